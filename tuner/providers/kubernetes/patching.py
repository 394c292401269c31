"""Building the JSON merge patches that change a workload, and the change annotation.

Patches are RFC 7386 merge patches.  Lists are replaced whole in a merge patch, so the
container list is sent complete (read, changed, written back) and guarded by the
object's ``resourceVersion``: a concurrent writer makes the API answer 409 instead of
being overwritten.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tuner.domain.errors import ProviderError
from tuner.domain.model import Change, Knob
from tuner.providers.kubernetes.affinity import AFFINITY_ANNOTATION, Placement, affinity_patch
from tuner.providers.kubernetes.api import JsonObject
from tuner.providers.kubernetes.quantities import format_mb
from tuner.providers.kubernetes.workloads import (
    KNATIVE_SERVICE,
    WorkloadKind,
    container_names,
    containers,
    dig,
)

CHANGE_ANNOTATION = "tuner.dev/last-change"
"""Annotation on a workload: JSON saying what tuner last changed, when and why."""

SUPPORTED_KNOBS: dict[str, frozenset[Knob]] = {
    "deployment": frozenset({Knob.MEMORY_MB, Knob.ZONE_AFFINITY}),
    "ksvc": frozenset({Knob.MEMORY_MB, Knob.CONCURRENCY, Knob.TIMEOUT_S}),
}


def _with_memory(container: JsonObject, memory_mb: int | float) -> JsonObject:
    """A copy of the container with memory limit and request set to ``memory_mb``."""
    changed = copy.deepcopy(container)
    resources = changed.setdefault("resources", {})
    quantity = format_mb(memory_mb)
    resources.setdefault("limits", {})["memory"] = quantity
    resources.setdefault("requests", {})["memory"] = quantity
    return changed


def change_patch(
    kind: WorkloadKind,
    obj: JsonObject,
    container: str,
    changes: Sequence[Change],
    annotation: str,
    placement: Placement | None = None,
) -> JsonObject:
    """The merge patch applying ``changes`` to ``obj``, guarded by its resourceVersion.

    ``placement`` is the dependency a zone affinity points towards (see :mod:`.affinity`).
    """
    unsupported = [c.knob.value for c in changes if c.knob not in SUPPORTED_KNOBS[kind.short]]
    if unsupported:
        raise ProviderError(f"a {kind.kind} has no knob {', '.join(unsupported)} tuner can set")
    pod_spec: dict[str, Any] = {}
    annotations: dict[str, str | None] = {CHANGE_ANNOTATION: annotation}
    for change in changes:
        if change.knob is Knob.MEMORY_MB:
            pod_spec["containers"] = [
                _with_memory(c, change.after) if name == container else c
                for c, name in zip(containers(obj), container_names(kind, obj), strict=True)
            ]
        elif change.knob is Knob.CONCURRENCY:
            pod_spec["containerConcurrency"] = int(change.after)
        elif change.knob is Knob.TIMEOUT_S and kind is KNATIVE_SERVICE:
            pod_spec["timeoutSeconds"] = int(round(change.after))
        elif change.knob is Knob.ZONE_AFFINITY:
            try:
                affinity, note = affinity_patch(obj, int(change.after), placement)
            except ValueError as error:
                raise ProviderError(f"{dig(obj, 'metadata', 'name')}: {error}") from None
            pod_spec["affinity"], annotations[AFFINITY_ANNOTATION] = affinity, note
    return {
        "metadata": {
            "resourceVersion": dig(obj, "metadata", "resourceVersion"),
            "annotations": annotations,
        },
        "spec": {"template": {"spec": pod_spec}},
    }


def change_annotation(changes: Sequence[Change], reason: str, now: float) -> str:
    """The annotation text: JSON with the time, the changes and the reason."""
    return json.dumps(
        {
            "time": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
            "changes": [c.describe() for c in changes],
            "reason": reason,
        },
        sort_keys=True,
    )
