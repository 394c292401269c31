"""Probe pods: the policy that allows them, and the ephemeral copy of a Deployment's pod.

A probe pod is one pod built from a Deployment's pod template, with the memory of the
container that was OOM-killed raised.  It keeps the labels the workload's Services select
on, so it serves a share of real traffic, but not ``pod-template-hash``, so no ReplicaSet
of the Deployment adopts it (a ReplicaSet selects on that label).  It is owned by the
Deployment without being controlled by it (``controller: false``): the garbage collector
deletes it with the Deployment, and no controller counts or replaces it.  It ends by
itself at ``activeDeadlineSeconds`` and is never restarted.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tuner.domain.durations import Duration
from tuner.providers.kubernetes.api import JsonObject
from tuner.providers.kubernetes.patching import _with_memory
from tuner.providers.kubernetes.signals import OOM_REASON
from tuner.providers.kubernetes.workloads import dig

PROBE_LABEL = "tuner.dev/probe"
"""On a probe pod: the name of the Deployment it probes."""
PROBE_ANNOTATION = "tuner.dev/probe"
"""On a probe pod: JSON saying why it runs, at what memory, and until when."""
TEMPLATE_HASH_LABEL = "pod-template-hash"
"""The label a Deployment's ReplicaSets select their pods by; a probe pod never carries it."""
NAME_PREFIX_CHARS = 40
"""A probe pod's name is the Deployment's (cut to this length), ``-probe-`` and a stamp."""


class ProbePolicy(BaseModel):
    """When and how an OOM-killed Deployment is probed (the provider's ``probe:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enabled: bool = False
    """Run one probe pod of a Deployment whose container was OOM-killed (opt-in)."""
    factor: float = Field(default=4.0, gt=1.0, le=64.0)
    """The probe's memory as a multiple of the limit the container was killed at."""
    max_mb: int = Field(default=4096, ge=64)
    """Never give a probe more memory than this."""
    for_s: Duration = Field(default=600.0, alias="for", ge=60.0, le=86_400.0)
    """How long a probe pod serves; also the wait after one before the next of a workload."""
    max_running: int = Field(default=2, ge=1, le=50)
    """Probe pods running at once across the provider's workloads."""

    def memory_mb(self, killed_at_mb: int) -> int:
        """The probe's memory for a container killed at ``killed_at_mb``."""
        return min(self.max_mb, int(round(killed_at_mb * self.factor)))


def probe_pod_name(deployment: str, now: float) -> str:
    """A DNS-1123 name for a probe of ``deployment`` started at ``now``."""
    stamp = _base36(int(now))
    return f"{deployment[:NAME_PREFIX_CHARS].rstrip('-.')}-probe-{stamp}"


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if not value:
            return out


def probe_pod(
    deployment: JsonObject,
    container: str,
    memory_mb: int,
    *,
    now: float,
    for_s: float,
    reason: str,
) -> JsonObject:
    """The probe pod of ``deployment``: its pod template with ``container`` at ``memory_mb``."""
    meta = deployment["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    template: Mapping[str, Any] = dig(deployment, "spec", "template") or {}
    template_meta: Mapping[str, Any] = template.get("metadata") or {}
    labels = {
        k: v for k, v in (template_meta.get("labels") or {}).items() if k != TEMPLATE_HASH_LABEL
    }
    labels[PROBE_LABEL] = name
    note = {
        "deployment": name,
        "container": container,
        "memory_mb": memory_mb,
        "reason": reason,
        "started": _stamp(now),
        "until": _stamp(now + for_s),
    }
    annotations = {
        **(template_meta.get("annotations") or {}),
        PROBE_ANNOTATION: json.dumps(note, sort_keys=True),
    }
    spec = copy.deepcopy(dict(template.get("spec") or {}))
    spec["containers"] = [
        _with_memory(c, memory_mb) if c.get("name") == container else c
        for c in spec.get("containers") or []
    ]
    spec["restartPolicy"] = "Never"
    spec["activeDeadlineSeconds"] = int(math.ceil(for_s))
    metadata: JsonObject = {
        "name": probe_pod_name(name, now),
        "namespace": namespace,
        "labels": labels,
        "annotations": annotations,
    }
    if meta.get("uid"):
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": name,
                "uid": meta["uid"],
                "controller": False,
            }
        ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def probed_deployment(pod: JsonObject) -> str | None:
    """The Deployment a probe pod probes, or None for any other pod."""
    value = (dig(pod, "metadata", "labels") or {}).get(PROBE_LABEL)
    return str(value) if value else None


def ran_out_of_memory(pod: JsonObject, container: str) -> bool:
    """True when the probe pod's container was OOM-killed (a probe is never restarted)."""
    statuses: list[JsonObject] = dig(pod, "status", "containerStatuses") or []
    for status in statuses:
        if status.get("name") != container:
            continue
        for state in (status.get("state"), status.get("lastState")):
            if dig(state or {}, "terminated", "reason") == OOM_REASON:
                return True
    return False


def has_ended(pod: JsonObject) -> bool:
    """True when the pod has stopped: succeeded, failed, or past its deadline."""
    return dig(pod, "status", "phase") in ("Succeeded", "Failed")
