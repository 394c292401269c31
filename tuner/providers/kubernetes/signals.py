"""Signals read from pods: OOM kills and restarts of a workload's containers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from tuner.providers.kubernetes.api import JsonObject
from tuner.providers.kubernetes.workloads import dig

OOM_REASON = "OOMKilled"


def pods_of(pods: Iterable[JsonObject], labels: Mapping[str, str]) -> list[JsonObject]:
    """The pods carrying every one of the given labels (an empty label set matches none)."""
    if not labels:
        return []
    return [
        pod
        for pod in pods
        if all((dig(pod, "metadata", "labels") or {}).get(k) == v for k, v in labels.items())
    ]


def _timestamp(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _statuses(pod: JsonObject, container: str | None) -> list[JsonObject]:
    statuses: list[JsonObject] = dig(pod, "status", "containerStatuses") or []
    return [s for s in statuses if container is None or s.get("name") == container]


OomKill = tuple[str, int, float]
"""One OOM kill: (container name, the container's restart count, when it ended)."""


def oom_kill_marks(pod: JsonObject, container: str | None = None) -> set[OomKill]:
    """The OOM kills the pod's statuses show (current or last termination of each container).

    The restart count tells two kills apart that Kubernetes stamped in the same second.
    """
    kills: set[OomKill] = set()
    for status in _statuses(pod, container):
        for state in (status.get("state"), status.get("lastState")):
            terminated = dig(state or {}, "terminated") or {}
            if terminated.get("reason") == OOM_REASON:
                finished = _timestamp(terminated.get("finishedAt"))
                if finished is not None:
                    restarts = int(status.get("restartCount") or 0)
                    kills.add((str(status.get("name", "")), restarts, finished))
    return kills


def oom_kills(pod: JsonObject, container: str | None = None) -> list[float]:
    """When the pod's containers were last OOM-killed (current or last termination)."""
    return sorted({when for _, _, when in oom_kill_marks(pod, container)})


def count_ooms(pods: Iterable[JsonObject], container: str, start: float, end: float) -> int:
    """Containers whose latest OOM kill happened in ``[start, end)``.

    Kubernetes keeps only the last termination of each container, so several kills of
    the same container within one window count once: a lower bound.
    """
    return sum(
        1 for pod in pods for _, _, when in oom_kill_marks(pod, container) if start <= when < end
    )


def restart_count(pods: Iterable[JsonObject], container: str) -> int:
    """Total restarts of the container across the pods (cumulative, as Kubernetes counts)."""
    return sum(int(s.get("restartCount") or 0) for pod in pods for s in _statuses(pod, container))


def has_recent_oom(pod: JsonObject, since: float) -> bool:
    """True when a container of the pod was OOM-killed at or after ``since``."""
    return any(when >= since for when in oom_kills(pod))
