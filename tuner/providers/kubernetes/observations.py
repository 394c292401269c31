"""What a workload's pods and the namespace's Events say about one window.

OOM kills of the tuned container come from the pods' statuses and from the OOM Events
that name a pod; per pod the larger count stands (one kill often shows in both).  OOM
kills of the pods' other containers, evictions, back-offs and restarts whose
termination the kubelet lost are counted apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tuner.providers.kubernetes import evictions, podevents, signals
from tuner.providers.kubernetes.api import JsonObject
from tuner.providers.kubernetes.workloads import dig
from tuner.providers.prometheus.queries import LatencyFacts


@dataclass(frozen=True, slots=True)
class PodSignals:
    """The window's counts for one workload's container."""

    ooms: int
    extra: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)


def eviction_time(pod: JsonObject) -> float | None:
    """When the pod was evicted, or None when its status does not tell.

    The ``DisruptionTarget`` condition says it; without one, the latest change of a
    condition (an evicted pod stops being Ready) or the last end of a container.
    """
    conditions = dig(pod, "status", "conditions") or []
    for condition in conditions:
        if condition.get("type") == "DisruptionTarget":
            when = signals.timestamp(condition.get("lastTransitionTime"))
            if when is not None:
                return when
    times = [signals.timestamp(c.get("lastTransitionTime")) for c in conditions] + [
        signals.timestamp(dig(s, "state", "terminated", "finishedAt"))
        for _, s in signals.container_statuses(pod)
    ]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _single_container(pod: JsonObject) -> bool:
    spec = pod.get("spec") or {}
    return len(spec.get("containers") or []) == 1 and not spec.get("initContainers")


def _oom_kills(
    pods: Sequence[JsonObject],
    counts: podevents.EventCounts,
    container: str,
    start: float,
    end: float,
) -> int:
    total = 0
    for pod in pods:
        name = str(dig(pod, "metadata", "name") or "")
        from_status = signals.count_ooms([pod], container, start, end)
        from_events = counts.oom_kills.get((name, container), 0)
        if _single_container(pod):
            from_events += counts.oom_kills.get((name, None), 0)
        total += max(from_status, from_events)
    return total


def _evictions(
    pods: Sequence[JsonObject], events: Sequence[JsonObject], start: float, end: float
) -> dict[str, tuple[float, evictions.Eviction]]:
    """The window's evictions by pod name: from the pods' statuses and their Evicted Events."""
    found: dict[str, tuple[float, evictions.Eviction]] = {}
    for event in events:
        eviction = evictions.event_eviction(event)
        when = podevents.event_time(event)
        if eviction and when is not None and start <= when < end:
            found[str(dig(event, "involvedObject", "name") or "")] = (when, eviction)
    for pod in pods:
        eviction = evictions.pod_eviction(pod)
        name = str(dig(pod, "metadata", "name") or "")
        when = eviction_time(pod) or found.get(name, (None, None))[0]
        if eviction is not None and when is not None and start <= when < end:
            found[name] = (when, eviction)
    return found


def observe(
    pods: Sequence[JsonObject],
    events: Iterable[JsonObject],
    container: str,
    start: float,
    end: float,
) -> PodSignals:
    """OOM kills, evictions, back-offs and unexplained restarts of one workload in a window.

    ``events`` may be the whole namespace's: only those about one of ``pods`` (or a node
    Event naming one) count.
    """
    own_names = {str(dig(p, "metadata", "name") or "") for p in pods}
    own_events = [
        e
        for e in events
        if dig(e, "involvedObject", "kind") != "Pod"
        or dig(e, "involvedObject", "name") in own_names
    ]
    counts = podevents.count_by_pod(own_events, pods, start, end)
    evicted = _evictions(pods, own_events, start, end)
    latest = max(evicted.values(), key=lambda pair: pair[0], default=None)
    extra = {
        "other_container_ooms": float(signals.count_other_ooms(pods, container, start, end)),
        "restarts_without_state": float(signals.restarts_without_state(pods, container)),
        "backoffs": float(sum(counts.backoffs.values())),
        "evictions": float(len(evicted)),
        "evictions_over_request": float(
            sum(1 for _, e in evicted.values() if e.exceeded_request(container))
        ),
    }
    evidence = {"eviction_reason": latest[1].resource or "unknown"} if latest else {}
    return PodSignals(_oom_kills(pods, counts, container, start, end), extra, evidence)


def invocations(latency: LatencyFacts | None, pods: Sequence[JsonObject]) -> int:
    """Requests served when Prometheus counts them; otherwise the pods observed.

    A Deployment without a request metric still runs: its pods are the units of work
    tuner can see, so an OOM-killed pod is data (``oom_rate`` is then kills per pod).
    """
    if latency is not None and latency.requests is not None:
        return latency.requests
    return len(pods)
