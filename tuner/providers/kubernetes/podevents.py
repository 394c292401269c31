"""Events the kubelet and the node-problem-detector write: OOM kills, back-offs, evictions.

Two kinds of OOM Event exist.  One is about a pod (``involvedObject.kind: Pod``, e.g. the
kubelet's ``CgroupOOM``) and counts for that pod.  The other is about a node
(``OOMKilling`` from the node-problem-detector, the kubelet's ``SystemOOM``) and usually
names only a process: it counts for a pod only when its message names the pod (by name
or uid), never by guessing from the node the pod ran on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tuner.providers.kubernetes.api import JsonObject
from tuner.providers.kubernetes.signals import timestamp
from tuner.providers.kubernetes.workloads import dig

OOM_REASONS = frozenset({"OOMKilling", "CgroupOOM", "SystemOOM"})
BACKOFF = "BackOff"


def event_time(event: JsonObject) -> float | None:
    """When the Event last happened (``lastTimestamp``, ``series``, ``eventTime``, ``firstTimestamp``)."""
    for value in (
        event.get("lastTimestamp"),
        dig(event, "series", "lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        dig(event, "metadata", "creationTimestamp"),
    ):
        when = timestamp(value) if isinstance(value, str) else None
        if when is not None:
            return when
    return None


def occurrences(event: JsonObject, start: float) -> int:
    """How many times the Event happened since ``start``: its count when it began since.

    An Event that began before ``start`` counts once: its count mixes older occurrences.
    """
    first = timestamp(event.get("firstTimestamp") or event.get("eventTime"))
    if first is None or first < start:
        return 1
    return max(1, int(event.get("count") or dig(event, "series", "count") or 1))


_FIELD_CONTAINER = re.compile(r"^spec\.(?:initContainers|containers|ephemeralContainers)\{(.+)\}$")


def container_of(event: JsonObject) -> str | None:
    """The container an Event names in ``involvedObject.fieldPath``, or None."""
    found = _FIELD_CONTAINER.match(str(dig(event, "involvedObject", "fieldPath") or ""))
    return found.group(1) if found else None


def _names(pod: JsonObject) -> tuple[str, str]:
    return str(dig(pod, "metadata", "name") or ""), str(dig(pod, "metadata", "uid") or "")


def attributed_pod(event: JsonObject, pods: Iterable[JsonObject]) -> JsonObject | None:
    """The pod an Event is about: the one it names as its object, or in its message.

    A node's OOM Event is attributed only when its message names the pod's name or uid
    as a whole word; otherwise it is about no pod.
    """
    involved = event.get("involvedObject") or {}
    candidates = list(pods)
    if involved.get("kind") == "Pod":
        name, uid = involved.get("name"), involved.get("uid")
        return next(
            (p for p in candidates if (uid and _names(p)[1] == uid) or _names(p)[0] == name),
            None,
        )
    message = str(event.get("message") or "")
    for pod in candidates:
        for word in _names(pod):
            if word and re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", message):
                return pod
    return None


def is_oom(event: JsonObject) -> bool:
    """True for an Event that reports a process killed for memory."""
    return event.get("reason") in OOM_REASONS


@dataclass(frozen=True, slots=True)
class EventCounts:
    """What the Events of a window say, per (pod name, container or None when not named)."""

    oom_kills: Mapping[tuple[str, str | None], int]
    backoffs: Mapping[tuple[str, str | None], int]


def count_by_pod(
    events: Iterable[JsonObject], pods: Iterable[JsonObject], start: float, end: float
) -> EventCounts:
    """OOM kills and back-offs in ``[start, end)`` of the pods the Events name."""
    candidates = list(pods)
    kills: dict[tuple[str, str | None], int] = {}
    backoffs: dict[tuple[str, str | None], int] = {}
    for event in events:
        into = kills if is_oom(event) else backoffs if event.get("reason") == BACKOFF else None
        when = event_time(event)
        if into is None or when is None or not start <= when < end:
            continue
        pod = attributed_pod(event, candidates)
        if pod is not None:
            key = (_names(pod)[0], container_of(event))
            into[key] = into.get(key, 0) + occurrences(event, start)
    return EventCounts(kills, backoffs)
