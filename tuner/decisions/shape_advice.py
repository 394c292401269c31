"""Proposals about the application's shape, for what tuner cannot change itself.

Pure, part of :mod:`tuner.decisions.advice` (which calls :func:`shape_proposals`): a
chatty private pair to fuse, with its figures and the exact pair; a code path to move
into a function of its own, with its saving against more memory for every invocation; a
far dependency to bring closer; data in another region or zone, with the options.  Each
sentence is written from the window's facts (:mod:`tuner.engine.shape_facts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.domain.model import Change, Knob, extra_number, fact_number
from tuner.engine.actions.shaping import (
    evidence_of,
    fused_memory_need,
    fusion_estimate,
)

_MARGIN = 1.1
"""The headroom a proposal adds to a memory need, as more-memory's default margin does."""


def shape_proposals(facts: Mapping[str, Any], change: Change | None) -> list[str]:
    """The shape proposals the facts call for, except the one the change carries out."""
    knob = change.knob if change is not None else None
    out = []
    if knob is not Knob.FUSED:
        out += _fusion(facts) + _memory_path(facts)
    if knob not in (Knob.NEAR_REPLICA, Knob.ZONE_AFFINITY):
        out += _distance(facts)
    out += _far_data(facts)
    return out


def _fusion(facts: Mapping[str, Any]) -> list[str]:
    """Fuse a private function into its one caller: the pair, the figures, the memory it needs."""
    if extra_number(facts, "callers") != 1.0 or (extra_number(facts, "caller_share") or 0) < 0.9:
        return []
    memory = fact_number(facts, "memory_mb") or 0.0
    estimate = fusion_estimate(facts, memory)
    if estimate is None or estimate.overhead_share < 0.5:
        return []
    function = facts.get("function") or "this function"
    need = fused_memory_need(facts)
    caller_mb = extra_number(facts, "caller_memory_mb") or 0.0
    memory_note = ""
    if need is not None and need > 0.9 * caller_mb:
        memory_note = f" Fused, {estimate.caller} needs about {need * _MARGIN:.0f} MB (it has {caller_mb:.0f} MB)."
    return [
        f"Fuse {function} into {estimate.caller}, its only caller ({estimate.caller} -> "
        f"{function}): {estimate.describe()}. Call it as a function in {estimate.caller}'s "
        f"code, or deploy the two as one.{memory_note}"
    ]


def _memory_path(facts: Mapping[str, Any]) -> list[str]:
    """Move the path that holds the memory into its own function: the saving against more memory."""
    share = extra_number(facts, "memory_path_share")
    held = extra_number(facts, "memory_path_mb")
    rest = extra_number(facts, "memory_rest_mb")
    path = evidence_of(facts).get("memory_path", "")
    if share is None or held is None or rest is None or not path:
        return []
    taking = extra_number(facts, "memory_path_invocations_share") or 1.0
    whole = (held + rest) * _MARGIN
    split = rest * _MARGIN + taking * held * _MARGIN
    saving = 1.0 - split / whole if whole > 0 else 0.0
    return [
        f"{path} holds {held:.0f} MB ({share:.0%}) of the peak, in {taking:.0%} of the "
        f"invocations; the rest need {rest:.0f} MB. Move it into a function of its own with "
        f"about {held * _MARGIN:.0f} MB: about {saving:.0%} less memory-time than giving the "
        f"whole function {whole:.0f} MB."
    ]


def _distance(facts: Mapping[str, Any]) -> list[str]:
    """Bring a far dependency closer, where no change of tuner's does."""
    share = extra_number(facts, "distance_share")
    where = evidence_of(facts).get("far_dependency", "")
    if share is None or share < 0.5 or not where:
        return []
    if extra_number(facts, "zone_mismatch") == 1.0:
        how = "run the function's pods in its zone (a preferred affinity), or keep a replica in theirs"
    elif extra_number(facts, "replica_distance_ms") is None:
        how = "keep a read replica near the function (and name it under replicas), or move one"
    else:
        how = "read from its nearer replica"
    return [f"{where}: {share:.0%} of its latency is distance. Narrow the gap: {how}."]


def _far_data(facts: Mapping[str, Any]) -> list[str]:
    """Data in another region or zone: the mismatch, with the options."""
    stores = extra_number(facts, "far_data_stores")
    where = evidence_of(facts).get("far_data", "")
    if not stores or not where:
        return []
    return [
        f"{where}. Options: move the function (or the data) into one region; replicate the "
        "data where the function runs (a DynamoDB global table replica, an RDS read replica, "
        "S3 replication); or cache its reads near the function. Cross-region and "
        "cross-zone traffic is also billed."
    ]
