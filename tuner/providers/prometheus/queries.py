"""The PromQL tuner asks about containers: peak memory, request latency and request counts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tuner.providers.prometheus.client import PrometheusClient

MEMORY_METRIC = "container_memory_working_set_bytes"
_MIB = 1024 * 1024


def quote(value: str) -> str:
    """A value quoted for a PromQL string literal."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _pods_regex(pods: Sequence[str]) -> str:
    """An anchored regex matching exactly these pod names, quoted for a PromQL string."""
    return quote("|".join(re.escape(p) for p in sorted(pods)))


def _range(start: float, end: float) -> str:
    return f"{max(1, round(end - start))}s"


@dataclass(frozen=True, slots=True)
class LatencyFacts:
    """Request counts and latency percentiles of one workload over a window."""

    requests: int | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class ContainerQueries:
    """Answers tuner's questions about Kubernetes containers from Prometheus (cAdvisor data).

    ``latency_metric`` names a request-duration histogram in seconds (without the
    ``_bucket`` suffix), e.g. ``http_request_duration_seconds``; its series must carry
    ``namespace`` and ``pod`` labels, as Prometheus' Kubernetes service discovery adds.
    """

    def __init__(self, client: PrometheusClient, latency_metric: str | None = None) -> None:
        """Query through ``client``; latency only when a histogram is named."""
        self.client = client
        self.latency_metric = latency_metric

    def peak_memory_mb(
        self, namespace: str, start: float, end: float
    ) -> dict[tuple[str, str], float]:
        """Peak working-set memory (MB) per (pod, container) of a namespace over the window."""
        promql = (
            f"max by (pod, container) (max_over_time({MEMORY_METRIC}"
            f'{{namespace="{quote(namespace)}",container!="",container!="POD"}}'
            f"[{_range(start, end)}]))"
        )
        return {
            (s.labels.get("pod", ""), s.labels.get("container", "")): s.value / _MIB
            for s in self.client.query(promql, end)
        }

    def latency(
        self, namespace: str, pods: Sequence[str], start: float, end: float
    ) -> LatencyFacts | None:
        """Requests and latency percentiles of the given pods, or None when not configured."""
        if not self.latency_metric or not pods:
            return None
        selector = f'{{namespace="{quote(namespace)}",pod=~"{_pods_regex(pods)}"}}'
        window = _range(start, end)
        buckets = f"sum by (le) (rate({self.latency_metric}_bucket{selector}[{window}]))"
        quantiles = {
            q: self._single(f"histogram_quantile({q}, {buckets})", end) for q in (0.5, 0.95, 0.99)
        }
        count = self._single(f"sum(increase({self.latency_metric}_count{selector}[{window}]))", end)
        return LatencyFacts(
            requests=round(count) if count is not None else None,
            p50_ms=_ms(quantiles[0.5]),
            p95_ms=_ms(quantiles[0.95]),
            p99_ms=_ms(quantiles[0.99]),
        )

    def _single(self, promql: str, at: float) -> float | None:
        samples = self.client.query(promql, at)
        return samples[0].value if samples else None


def _ms(seconds: float | None) -> float | None:
    return seconds * 1000.0 if seconds is not None else None
