"""Who calls whom among a namespace's services, from the request timing Prometheus holds.

Prometheus keeps aggregates, not one interval per request, so the services' request rates
per step are mined instead (:mod:`tuner.mining.rates`).  Pods are grouped into the
selected workloads by the pods the API lists, and a pod gone since then by its name
(``<deployment>-<hash>-<id>``); pods of other workloads become dependencies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from tuner.mining.rates import mine_rates
from tuner.providers.prometheus import ContainerQueries
from tuner.providers.prometheus.request_rates import read_activity, service_series
from tuner.trace.topology import Edge, Node, Topology

_POD_SUFFIX = re.compile(r"-[a-z0-9]{5,10}-[a-z0-9]{5}$|-[a-z0-9]{5}$|-\d+$")


def service_of_pod(pod: str, known: Mapping[str, str], workloads: set[str]) -> str:
    """The service a pod serves: its listed workload, else its name without the pod suffixes."""
    if pod in known:
        return known[pod]
    for name in sorted(workloads, key=len, reverse=True):
        if pod.startswith(name + "-"):
            return name
    return _POD_SUFFIX.sub("", pod) or pod


def mined_topology(
    queries: ContainerQueries,
    namespace: str,
    pods_of: Mapping[str, list[str]],
    start: float,
    end: float,
    step: float,
) -> Topology:
    """The heuristic topology of a namespace's services over ``[start, end]``.

    ``pods_of`` maps each selected workload to its current pods.  Edges carry the
    estimated calls, the callee's latency percentiles over the window (from its histogram)
    and evidence ``timing``; the error rate is unknown from a latency histogram.
    """
    metric = queries.latency_metric
    if not metric:
        raise ValueError("timing topology needs latency_metric (a request-duration histogram)")
    known = {pod: workload for workload, pods in pods_of.items() for pod in pods}
    activity = read_activity(queries.client, metric, namespace, start, end, step)
    series, members = service_series(activity, lambda pod: service_of_pod(pod, known, set(pods_of)))
    edges = []
    for mined in mine_rates(series):
        latency = queries.latency(namespace, members[mined.target], start, end)
        edges.append(
            Edge(
                source=mined.source,
                target=mined.target,
                calls=mined.calls,
                p50_ms=latency.p50_ms if latency else None,
                p95_ms=latency.p95_ms if latency else None,
                error_rate=None,
                confidence=mined.confidence,
                evidence="timing",
            )
        )
    nodes = tuple(Node(s.node, "function" if s.node in pods_of else "dependency") for s in series)
    return Topology(nodes, tuple(sorted(edges, key=lambda e: (e.source, e.target))))
