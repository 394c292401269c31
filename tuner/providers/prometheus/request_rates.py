"""Request activity per pod and step, from a request-duration histogram: what rate mining reads.

Two range queries over a namespace: requests per step (from the histogram's ``_count``)
and seconds spent serving per step (from its ``_sum``), by pod.  Pods are then grouped
into services by the caller, and each service's steps are aligned on one grid.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tuner.mining.rates import RateSeries
from tuner.providers.prometheus.client import PrometheusClient, Series
from tuner.providers.prometheus.queries import quote

MAX_POINTS = 10_000
"""Prometheus refuses range queries of more than 11,000 points per series."""


@dataclass(frozen=True, slots=True)
class PodActivity:
    """Requests and busy seconds of each pod at each step of one grid."""

    step: float
    steps: tuple[float, ...]
    requests: Mapping[str, Mapping[float, float]]
    busy_s: Mapping[str, Mapping[float, float]]


def read_activity(
    client: PrometheusClient,
    metric: str,
    namespace: str,
    start: float,
    end: float,
    step: float,
) -> PodActivity:
    """Requests per step and busy seconds per step of every pod of the namespace."""
    start = round(start, 3)  # the grid Prometheus answers on, in whole milliseconds
    step = round(max(step, (end - start) / MAX_POINTS), 3)
    window = f"{max(1, round(2 * step))}s"
    selector = f'{{namespace="{quote(namespace)}"}}'

    def per_step(suffix: str) -> dict[str, dict[float, float]]:
        promql = f"sum by (pod) (rate({metric}_{suffix}{selector}[{window}])) * {step:.3f}"
        return _by_pod(client.query_range(promql, start, end, step))

    count = int((end - start) // step) + 1
    return PodActivity(
        step=step,
        steps=tuple(round(start + i * step, 3) for i in range(count)),
        requests=per_step("count"),
        busy_s=per_step("sum"),
    )


def _by_pod(series: list[Series]) -> dict[str, dict[float, float]]:
    return {
        s.labels.get("pod", ""): {round(t, 3): v for t, v in s.points}
        for s in series
        if s.labels.get("pod")
    }


def service_series(
    activity: PodActivity, service_of: Callable[[str], str]
) -> tuple[list[RateSeries], dict[str, list[str]]]:
    """One aligned series per service (pods summed), and each service's pods.

    A step a pod did not report counts as no requests.  A service's mean duration is its
    busy seconds over its requests.
    """
    pods: dict[str, list[str]] = defaultdict(list)
    for pod in activity.requests:
        pods[service_of(pod)].append(pod)
    out = []
    for service, members in sorted(pods.items()):
        counts = tuple(
            sum(activity.requests[p].get(t, 0.0) for p in members) for t in activity.steps
        )
        requests = sum(counts)
        busy = sum(sum(activity.busy_s.get(p, {}).values()) for p in members)
        mean = busy / requests if requests > 0 else None
        out.append(RateSeries(service, counts, mean))
    return out, dict(pods)
