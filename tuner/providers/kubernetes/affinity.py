"""tuner's preferred pod affinity towards a dependency's zone: read, added and taken away.

The ``zone-affinity`` action asks the scheduler to *prefer* nodes in the zone where the
pods behind a dependency's Service run: one ``preferredDuringSchedulingIgnoredDuringExecution``
term of the pod template's ``podAffinity``, with that Service's selector and the topology
key ``topology.kubernetes.io/zone``.  Never a required term: a required affinity that no
node can meet leaves pods unschedulable.

The term tuner added is named in the annotation ``tuner.dev/zone-affinity`` (the Service,
its selector, the weight), so the knob reads back as the weight of exactly that term
(0: none), a person's own terms are kept as they are, and taking tuner's term away leaves
the pod template as it was before (an emptied ``podAffinity`` or ``affinity`` goes too).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tuner.providers.kubernetes.api import JsonObject

ZONE_LABEL = "topology.kubernetes.io/zone"
"""The node label that names a node's zone."""
AFFINITY_ANNOTATION = "tuner.dev/zone-affinity"
"""Names the pod affinity term tuner added (JSON: service, selector, weight)."""
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a workload's far dependency runs: its Service and the selector of its pods."""

    service: str
    selector: Mapping[str, str]


def _term(selector: Mapping[str, str], weight: int) -> dict[str, Any]:
    """The preferred term: nodes in the zone of pods matching ``selector``, with ``weight``."""
    return {
        "weight": weight,
        "podAffinityTerm": {
            "labelSelector": {"matchLabels": dict(selector)},
            "topologyKey": ZONE_LABEL,
        },
    }


def _ours(term: Any, selector: Mapping[str, str]) -> bool:
    """True for a preferred term towards the zone of pods matching exactly ``selector``."""
    inner = term.get("podAffinityTerm") if isinstance(term, Mapping) else None
    return (
        isinstance(inner, Mapping)
        and inner.get("topologyKey") == ZONE_LABEL
        and inner.get("labelSelector") == {"matchLabels": dict(selector)}
    )


def recorded(obj: JsonObject) -> Placement | None:
    """The term tuner says it added (its annotation), or None."""
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(AFFINITY_ANNOTATION)
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("selector"), dict):
        return None
    return Placement(
        str(data.get("service", "")), {str(k): str(v) for k, v in data["selector"].items()}
    )


def _live(obj: JsonObject) -> dict[str, Any]:
    """The pod template's ``affinity`` as it is ({} without one)."""
    template = (obj.get("spec") or {}).get("template") or {}
    found = (template.get("spec") or {}).get("affinity")
    return found if isinstance(found, dict) else {}


def _preferred(obj: JsonObject) -> list[Any]:
    found = (_live(obj).get("podAffinity") or {}).get(_PREFERRED)
    return list(found) if isinstance(found, list) else []


def zone_affinity(obj: JsonObject) -> int:
    """The weight of tuner's term in the pod template, 0 when it is not there (or was changed)."""
    placement = recorded(obj)
    if placement is None:
        return 0
    for term in _preferred(obj):
        if _ours(term, placement.selector):
            weight = term.get("weight")
            return weight if isinstance(weight, int) else 0
    return 0


def affinity_patch(
    obj: JsonObject, weight: int, placement: Placement | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The pod template's ``affinity`` for a merge patch, and the annotation's new text.

    ``weight`` 0 takes tuner's term away (``None`` values delete what is left empty);
    otherwise ``placement`` names the dependency, and tuner's term (a new one, or the
    recorded one re-weighted) is the last of the preferred terms.  ValueError when a
    person took tuner's term away (its annotation stays, the term is gone): never put back.
    """
    affinity = copy.deepcopy(_live(obj))
    pod_affinity = dict(affinity.get("podAffinity") or {})
    previous = recorded(obj)
    if weight > 0 and previous is not None and zone_affinity(obj) == 0:
        raise ValueError("a person took tuner's zone affinity away: left as it is")
    terms = [t for t in _preferred(obj) if previous is None or not _ours(t, previous.selector)]
    annotation = None
    if weight > 0:
        if placement is None:
            raise ValueError("a zone affinity needs the dependency's placement")
        terms.append(_term(placement.selector, weight))
        annotation = json.dumps(
            {"service": placement.service, "selector": dict(placement.selector), "weight": weight},
            sort_keys=True,
        )
    if terms:
        pod_affinity[_PREFERRED] = terms
    else:
        pod_affinity.pop(_PREFERRED, None)
    if pod_affinity:
        affinity["podAffinity"] = pod_affinity
    else:
        affinity.pop("podAffinity", None)
    live = _live(obj)
    return (merge_patch(live, affinity) if affinity else None), annotation


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7386 merge patch that turns ``old`` into ``new``: what is gone becomes null."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            inner = merge_patch(before, value)
            if inner:
                patch[key] = inner
        elif value != before:
            patch[key] = value
    return patch
