"""Evictions by the kubelet: what the node was short of, and who used more than it asked.

Under node pressure the kubelet evicts pods and says why in the pod's status (``reason:
Evicted``) and in an ``Evicted`` Event, with messages such as::

    The node was low on resource: memory. Container app was using 35505620Ki, which
    exceeds its request of 12Gi.
    The node was low on resource: memory. Threshold quantity: 100Mi, available: 87608Ki.
    Container app was using 48458972Ki, request is 15Gi, has larger consumption of memory.
    The node was low on resource: ephemeral-storage. Threshold quantity: 1Gi, available: 0.
    The node had condition: [MemoryPressure].

A container that used more memory than it requested is evicted first, so a larger
request fixes that eviction; the others say nothing a memory change can fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tuner.providers.kubernetes.api import JsonObject
from tuner.providers.kubernetes.quantities import parse_bytes
from tuner.providers.kubernetes.workloads import dig

EVICTED = "Evicted"
_RESOURCE = re.compile(r"low on resource: \[?([\w-]+)\]?|had condition: \[(\w+)\]")
_CONDITIONS = {
    "MemoryPressure": "memory",
    "DiskPressure": "ephemeral-storage",
    "PIDPressure": "pids",
}
_QUANTITY = r"([0-9.]+(?:[eE][+-]?[0-9]+)?[A-Za-z]*)"
_USAGE = re.compile(
    rf"Container ([\w.-]+) was using {_QUANTITY}, "
    rf"(?:which exceeds its request of {_QUANTITY}|request is {_QUANTITY}, has larger)"
)


@dataclass(frozen=True, slots=True)
class Eviction:
    """One eviction as the kubelet told it."""

    resource: str | None
    """What the node was low on: memory, ephemeral-storage, pids (None: not said)."""
    over_request: frozenset[str]
    """The containers that used more memory than they requested, by the kubelet's account."""

    def exceeded_request(self, container: str) -> bool:
        """True when the eviction was for memory and ``container`` used more than its request."""
        return self.resource == "memory" and container in self.over_request


def parse(message: str) -> Eviction:
    """The resource and the containers over their request that an eviction message names."""
    found = _RESOURCE.search(message)
    resource = None
    if found:
        word = found.group(1) or found.group(2)
        resource = _CONDITIONS.get(word, word)
    over = set()
    for name, used, exceeds, request_is in _USAGE.findall(message):
        try:
            if parse_bytes(used.rstrip(".")) > parse_bytes((exceeds or request_is).rstrip(".")):
                over.add(name)
        except ValueError:
            continue  # a quantity the kubelet never writes: no claim about this container
    return Eviction(resource, frozenset(over))


def pod_eviction(pod: JsonObject) -> Eviction | None:
    """The eviction the pod's status records, or None when it was not evicted."""
    if dig(pod, "status", "reason") != EVICTED:
        return None
    return parse(str(dig(pod, "status", "message") or ""))


def event_eviction(event: JsonObject) -> Eviction | None:
    """The eviction an ``Evicted`` Event about a pod records, or None for any other Event."""
    if event.get("reason") != EVICTED or dig(event, "involvedObject", "kind") != "Pod":
        return None
    return parse(str(event.get("message") or ""))
