"""Signals read from pods: OOM kills and restarts of a workload's containers.

A pod reports its containers in three lists: ``containerStatuses`` (the regular
containers, classic sidecars among them), ``initContainerStatuses`` (init containers, and
sidecars declared as init containers with ``restartPolicy: Always``) and
``ephemeralContainerStatuses`` (debug containers).  An OOM kill is read from the
``OOMKilled`` reason of a container's current or last termination, never from exit code
137 alone: a liveness-probe kill and the node's eviction also end with 137.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from tuner.providers.kubernetes.api import JsonObject
from tuner.providers.kubernetes.workloads import container_memory_mb, dig

OOM_REASON = "OOMKilled"
LOST_REASON = "ContainerStatusUnknown"
"""The reason the kubelet writes when it lost a container and so its termination."""

_LISTS = (
    ("containerStatuses", "container"),
    ("initContainerStatuses", "init"),
    ("ephemeralContainerStatuses", "ephemeral"),
)


def pods_of(pods: Iterable[JsonObject], labels: Mapping[str, str]) -> list[JsonObject]:
    """The pods carrying every one of the given labels (an empty label set matches none)."""
    if not labels:
        return []
    return [
        pod
        for pod in pods
        if all((dig(pod, "metadata", "labels") or {}).get(k) == v for k, v in labels.items())
    ]


def in_force(pods: Iterable[JsonObject], container: str, memory_mb: int) -> list[JsonObject]:
    """The pods that run the memory in force: their ``container`` has ``memory_mb``.

    A pod of an older template (a change, or a person's edit, rolled out since it
    started) is evidence about another size: its OOM kills must not ask the size in force
    for more.  A pod whose spec does not say its container's memory is kept.
    """
    kept = []
    for pod in pods:
        spec = next(
            (c for c in dig(pod, "spec", "containers") or [] if c.get("name") == container), None
        )
        memory = container_memory_mb(spec) if spec is not None else None
        if memory is None or memory == memory_mb:
            kept.append(pod)
    return kept


def timestamp(text: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 time; None for none or the zero time."""
    if not text or text.startswith("0001-01-01"):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def container_statuses(pod: JsonObject) -> Iterator[tuple[str, JsonObject]]:
    """Every container status of the pod with its kind: container, init, sidecar, ephemeral.

    A sidecar is an init container whose spec says ``restartPolicy: Always``.
    """
    sidecars = {
        c.get("name")
        for c in dig(pod, "spec", "initContainers") or []
        if c.get("restartPolicy") == "Always"
    }
    for field, kind in _LISTS:
        for status in dig(pod, "status", field) or []:
            if kind == "init" and status.get("name") in sidecars:
                yield "sidecar", status
            else:
                yield kind, status


def _statuses(pod: JsonObject, container: str | None) -> list[JsonObject]:
    return [
        s for _, s in container_statuses(pod) if container is None or s.get("name") == container
    ]


def oom_terminations(status: JsonObject) -> list[JsonObject]:
    """The current and last terminations of a container status that were OOM kills."""
    terminations = [dig(status, key, "terminated") or {} for key in ("state", "lastState")]
    return [t for t in terminations if t.get("reason") == OOM_REASON]


OomKill = tuple[str, int, float]
"""One OOM kill: (container name, the container's restart count, when it ended)."""


def oom_kill_marks(pod: JsonObject, container: str | None = None) -> set[OomKill]:
    """The OOM kills the pod's statuses show (current or last termination of each container).

    Every kind of container counts (init containers, sidecars, ephemeral containers).
    The restart count tells two kills apart that Kubernetes stamped in the same second.
    """
    kills: set[OomKill] = set()
    for status in _statuses(pod, container):
        for terminated in oom_terminations(status):
            finished = timestamp(terminated.get("finishedAt"))
            if finished is not None:
                restarts = int(status.get("restartCount") or 0)
                kills.add((str(status.get("name", "")), restarts, finished))
    return kills


def oom_kills(pod: JsonObject, container: str | None = None) -> list[float]:
    """When the pod's containers were last OOM-killed (current or last termination)."""
    return sorted({when for _, _, when in oom_kill_marks(pod, container)})


def count_ooms(pods: Iterable[JsonObject], container: str, start: float, end: float) -> int:
    """Containers named ``container`` whose latest OOM kill happened in ``[start, end)``.

    Kubernetes keeps only the last termination of each container, so several kills of
    the same container within one window count once: a lower bound.
    """
    return sum(
        1 for pod in pods for _, _, when in oom_kill_marks(pod, container) if start <= when < end
    )


def count_other_ooms(pods: Iterable[JsonObject], container: str, start: float, end: float) -> int:
    """OOM kills in ``[start, end)`` of the pods' containers not named ``container``."""
    return sum(
        1
        for pod in pods
        for name, _, when in oom_kill_marks(pod)
        if name != container and start <= when < end
    )


def restart_count(pods: Iterable[JsonObject], container: str) -> int:
    """Total restarts of the container across the pods (cumulative, as Kubernetes counts)."""
    return sum(int(s.get("restartCount") or 0) for pod in pods for s in _statuses(pod, container))


def lost_termination(status: JsonObject) -> bool:
    """True when a container restarted or ended and the kubelet kept no record of why.

    Either the last state has no termination (``lastState: {}`` after a restart) or the
    kubelet wrote ``ContainerStatusUnknown``: such a restart is never an OOM kill.
    """
    states = [dig(status, key, "terminated") or {} for key in ("state", "lastState")]
    if any(t.get("reason") == LOST_REASON for t in states):
        return True
    return int(status.get("restartCount") or 0) > 0 and not states[1]


def restarts_without_state(pods: Iterable[JsonObject], container: str) -> int:
    """Containers named ``container`` whose last restart or end left no termination record."""
    return sum(1 for pod in pods for s in _statuses(pod, container) if lost_termination(s))


def has_recent_oom(pod: JsonObject, since: float) -> bool:
    """True when a container of the pod was OOM-killed at or after ``since``."""
    return any(when >= since for when in oom_kills(pod))
