"""tuner's zone affinity term as merge patches: added beside a person's, taken away exactly."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tuner.providers.kubernetes.affinity import (
    AFFINITY_ANNOTATION,
    Placement,
    affinity_patch,
    merge_patch,
    zone_affinity,
)

ORDERS = Placement("orders-db", {"app": "orders-db"})
PERSONS_TERM = {
    "weight": 10,
    "podAffinityTerm": {
        "labelSelector": {"matchLabels": {"app": "cache"}},
        "topologyKey": "topology.kubernetes.io/zone",
    },
}


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def workload(affinity: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app"}]}
    if affinity is not None:
        spec["affinity"] = affinity
    return {"metadata": {"name": "api", "annotations": {}}, "spec": {"template": {"spec": spec}}}


def patched(obj: dict[str, Any], weight: int, placement: Placement | None) -> dict[str, Any]:
    affinity, note = affinity_patch(obj, weight, placement)
    out = copy.deepcopy(obj)
    spec = out["spec"]["template"]["spec"]
    out["spec"]["template"]["spec"] = apply_merge_patch(spec, {"affinity": affinity})
    out["metadata"]["annotations"] = apply_merge_patch(
        out["metadata"]["annotations"], {AFFINITY_ANNOTATION: note}
    )
    return out


@pytest.mark.parametrize(
    "affinity",
    [
        None,
        {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1}]}},
        {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [PERSONS_TERM]}},
        {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [PERSONS_TERM["podAffinityTerm"]]
            }
        },
    ],
    ids=["none", "a node affinity", "a persons preferred term", "a persons required term"],
)
def test_tuners_term_is_added_beside_a_persons_and_taken_away_exactly(
    affinity: dict[str, Any] | None,
) -> None:
    before = workload(affinity)
    added = patched(before, 100, ORDERS)
    assert zone_affinity(before) == 0 and zone_affinity(added) == 100
    preferred = added["spec"]["template"]["spec"]["affinity"]["podAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert preferred[-1]["podAffinityTerm"]["labelSelector"] == {
        "matchLabels": {"app": "orders-db"}
    }
    # tuner never writes a required term (a person's stays as it is, untouched)
    assert "requiredDuringScheduling" not in str(affinity_patch(before, 100, ORDERS)[0])
    removed = patched(added, 0, None)
    assert removed["spec"] == before["spec"]
    assert zone_affinity(removed) == 0


def test_a_term_a_person_took_away_is_never_put_back() -> None:
    added = patched(workload(), 100, ORDERS)
    by_hand = copy.deepcopy(added)
    del by_hand["spec"]["template"]["spec"]["affinity"]
    assert zone_affinity(by_hand) == 0  # read as none, the annotation still there
    with pytest.raises(ValueError, match="a person took"):
        affinity_patch(by_hand, 100, ORDERS)


def test_a_reweighted_term_reads_as_the_persons_weight() -> None:
    added = patched(workload(), 100, ORDERS)
    terms = added["spec"]["template"]["spec"]["affinity"]["podAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    terms[0]["weight"] = 40
    assert zone_affinity(added) == 40


def test_merge_patch_turns_one_object_into_the_other() -> None:
    old = {"a": {"b": 1, "c": [1, 2]}, "d": 4}
    new = {"a": {"c": [1]}, "e": 5}
    patch = merge_patch(old, new)
    assert patch == {"d": None, "a": {"b": None, "c": [1]}, "e": 5}
    assert apply_merge_patch(old, patch) == new
