"""How far a workload's dependencies are: their latency as the workload sees it, and their zones.

With ``dependency_metric`` set (a client-side request-duration histogram in seconds, such as
OpenTelemetry's ``http_client_request_duration_seconds``, whose series carry ``namespace``,
``pod`` and ``dependency_label`` naming the Service called), each workload's window gets
its ``dependencies``: calls, failed calls (series with an ``error_type``) and p95, as its
pods saw them.  For each dependency that is a Service of the namespace with ready endpoints,
its zones come from its EndpointSlices and the nodes' ``topology.kubernetes.io/zone`` (the
endpoint's own ``zone`` where the node says none), and its own p95 from ``latency_metric``
over the pods behind those endpoints.  The farthest dependency (in none of the workload's
zones first, then the largest gap between the two p95s) gives ``extra.distance_share``
(the share of its p95 that its own does not account for), ``extra.zone_mismatch`` and
``evidence.far_dependency``.  A dependency without ready endpoints has no zone: it is never
the far one, so no affinity is planned towards it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from tuner.domain.model import DependencyFacts, FunctionRef, WindowFacts
from tuner.providers.kubernetes.affinity import ZONE_LABEL, Placement
from tuner.providers.kubernetes.api import JsonObject, KubeApi
from tuner.providers.kubernetes.workloads import dig
from tuner.providers.prometheus import ContainerQueries, PrometheusClient
from tuner.providers.prometheus.queries import quote

ENDPOINT_SLICES = "/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True, slots=True)
class Dependency:
    """A Service of the namespace: the selector of its pods, its ready pods and their zones."""

    service: str
    selector: Mapping[str, str]
    pods: tuple[str, ...]
    zones: frozenset[str]


@dataclass(frozen=True, slots=True)
class Distance:
    """What one window says about how far one workload's dependencies are."""

    dependencies: Mapping[str, DependencyFacts]
    extra: Mapping[str, float]
    evidence: Mapping[str, str]
    far: Placement | None
    """The farthest dependency, towards whose zone an affinity would point."""


class Zones:
    """The namespace's Services, their ready endpoints and every node's zone, read once a cycle."""

    def __init__(self, api: KubeApi, namespace: str) -> None:
        nodes = api.list("/api/v1/nodes")
        self.of_node = {
            str(dig(n, "metadata", "name")): str((dig(n, "metadata", "labels") or {})[ZONE_LABEL])
            for n in nodes
            if ZONE_LABEL in (dig(n, "metadata", "labels") or {})
        }
        services = api.list(f"/api/v1/namespaces/{namespace}/services")
        slices = api.list(ENDPOINT_SLICES.format(namespace=namespace))
        self.dependencies = {
            name: dependency
            for service in services
            if (dependency := self._dependency(service, slices)) is not None
            for name in [dependency.service]
        }

    def _dependency(self, service: JsonObject, slices: Sequence[JsonObject]) -> Dependency | None:
        name = str(dig(service, "metadata", "name"))
        selector = dig(service, "spec", "selector") or {}
        pods, zones = [], set()
        for found in slices:
            if (dig(found, "metadata", "labels") or {}).get(SERVICE_NAME_LABEL) != name:
                continue
            for endpoint in found.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                zone = self.of_node.get(str(endpoint.get("nodeName")), endpoint.get("zone"))
                if zone:
                    zones.add(str(zone))
                target = endpoint.get("targetRef") or {}
                if target.get("kind") == "Pod" and target.get("name"):
                    pods.append(str(target["name"]))
        if not zones or not selector:
            return None  # no ready endpoint in a known zone, or no pods to be near
        return Dependency(name, dict(selector), tuple(sorted(pods)), frozenset(zones))

    def of_pods(self, pods: Sequence[JsonObject]) -> frozenset[str]:
        """The zones the pods run in (of those on a node with a zone)."""
        nodes = (str(dig(p, "spec", "nodeName") or "") for p in pods)
        return frozenset(self.of_node[n] for n in nodes if n in self.of_node)


class DependencyLatency:
    """The client-side histogram: calls, errors and p95 per dependency of one workload's pods."""

    def __init__(self, client: PrometheusClient, metric: str, label: str) -> None:
        self.client, self.metric, self.label = client, metric, label

    def facts(
        self, namespace: str, pods: Sequence[str], start: float, end: float
    ) -> dict[str, DependencyFacts]:
        """Each dependency the pods called in the window, with its calls, errors and p95."""
        if not pods:
            return {}
        names = quote("|".join(re.escape(p) for p in sorted(pods)))
        pods_only = f'namespace="{quote(namespace)}",pod=~"{names}"'
        selector, errors_selector = f"{{{pods_only}}}", f'{{{pods_only},error_type!=""}}'
        span = f"{max(1, round(end - start))}s"
        by = f"sum by ({self.label})"
        calls = self._by_dependency(f"{by} (increase({self.metric}_count{selector}[{span}]))", end)
        failed = self._by_dependency(
            f"{by} (increase({self.metric}_count{errors_selector}[{span}]))", end
        )
        buckets = f"sum by (le, {self.label}) (rate({self.metric}_bucket{selector}[{span}]))"
        p95 = self._by_dependency(f"histogram_quantile(0.95, {buckets})", end)
        return {
            name: DependencyFacts(
                name=name,
                calls=round(count),
                errors=round(failed.get(name, 0.0)),
                latency_p95_ms=p95[name] * 1000 if name in p95 else None,
            )
            for name, count in calls.items()
            if count > 0
        }

    def _by_dependency(self, promql: str, at: float) -> dict[str, float]:
        return {
            s.labels[self.label]: s.value
            for s in self.client.query(promql, at)
            if s.labels.get(self.label)
        }


def distance(
    namespace: str,
    pods: Sequence[JsonObject],
    called: Mapping[str, DependencyFacts],
    zones: Zones,
    server: ContainerQueries,
    start: float,
    end: float,
) -> Distance:
    """The distance facts of one workload whose pods made the ``called`` calls."""
    mine = zones.of_pods(pods)
    candidates = []
    for name, facts in called.items():
        dependency = zones.dependencies.get(name)
        seen_here = facts.latency_p95_ms
        if dependency is None or seen_here is None or not seen_here:
            continue
        own = server.latency(namespace, dependency.pods, start, end)
        at_server = own.p95_ms if own is not None else None
        if at_server is None:
            continue  # its own latency unknown: distance cannot be told from slowness
        apart = bool(mine) and not (mine & dependency.zones)
        candidates.append((apart, seen_here - at_server, dependency, seen_here, at_server))
    if not candidates:
        return Distance(called, {}, {}, None)
    apart, gap, dependency, seen_here, at_server = max(
        candidates, key=lambda c: (c[0], c[1], c[2].service)
    )
    where = (
        f"{dependency.service}: p95 {seen_here:.0f} ms as this function's pods see it, "
        f"{at_server:.0f} ms at its own pods; its ready endpoints in zone "
        f"{', '.join(sorted(dependency.zones))}, this function's pods in "
        f"{', '.join(sorted(mine)) or 'no known zone'}"
    )
    return Distance(
        called,
        {"distance_share": max(0.0, gap) / seen_here, "zone_mismatch": 1.0 if apart else 0.0},
        {"far_dependency": where},
        Placement(dependency.service, dependency.selector),
    )


class Distances:
    """The distance facts of one namespace's workloads, a cycle at a time, and each one's far
    dependency (where a zone affinity would point)."""

    def __init__(self, client: PrometheusClient, metric: str, label: str, server_metric: str):
        self.latency = DependencyLatency(client, metric, label)
        self.server = ContainerQueries(client, server_metric)
        self.far: dict[FunctionRef, Placement] = {}
        self._zones: Zones | None = None

    def begin(self, api: KubeApi, namespace: str) -> None:
        """Read the namespace's Services, endpoints and the nodes' zones for this cycle."""
        self._zones = Zones(api, namespace)

    def add(self, window: WindowFacts, pods: Sequence[JsonObject], namespace: str) -> WindowFacts:
        """The window with its dependencies and distance facts; its far dependency noted."""
        if self._zones is None:
            return window
        names = [str(dig(p, "metadata", "name")) for p in pods]
        called = self.latency.facts(namespace, names, window.start, window.end)
        found = distance(
            namespace, pods, called, self._zones, self.server, window.start, window.end
        )
        if found.far is not None:
            self.far[window.ref] = found.far
        else:
            self.far.pop(window.ref, None)
        return replace(
            window,
            dependencies=found.dependencies,
            extra={**window.extra, **found.extra},
            evidence={**window.evidence, **found.evidence},
        )
