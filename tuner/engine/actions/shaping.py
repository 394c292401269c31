"""Actions that change the application's shape: fuse a chatty pair, split a path, move closer.

Each works on facts drawn from the topology (:mod:`tuner.engine.shape_facts`): who calls
a function and what each call costs, which code path holds the memory, how far the data
is.  Where the provider cannot carry one out (its knob is ``None``), the action says so
and the decision tells people, with the proposal :mod:`tuner.decisions.advice` writes
from the same facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from tuner.domain.model import Change, FunctionConfig, Knob, Limits, extra_number, fact_number
from tuner.engine.actions.base import BaseAction, Plan, not_applicable
from tuner.engine.sizing import LAMBDA_PRICE_GB_S

LAMBDA_PRICE_PER_REQUEST = 0.20 / 1_000_000
"""AWS Lambda's price of one request."""
_MINUTES_PER_MONTH = 30 * 24 * 60


def evidence_of(facts: Mapping[str, Any]) -> Mapping[str, str]:
    """The text evidence of the facts (``evidence.<name>``), its texts only."""
    evidence = facts.get("evidence")
    if not isinstance(evidence, Mapping):
        return {}
    return {name: text for name, text in evidence.items() if isinstance(text, str)}


@dataclass(frozen=True, slots=True)
class FusionEstimate:
    """What fusing a callee into its caller saves, estimated from one window's facts."""

    caller: str
    calls_per_min: float
    overhead_ms: float
    """Per call: the time the caller waits beyond the callee's own duration."""
    overhead_share: float
    caller_p95_ms: float | None
    caller_p95_after_ms: float | None
    """The caller's p95 less the overhead of its calls per invocation."""
    mb_s_per_call_saved: float
    """The caller's wait over the hop, and the callee's own billed time, per call."""
    dollars_per_month: float
    """At the provider's prices, else Lambda's."""

    def describe(self) -> str:
        """E.g. ``1,240 calls/min, 1.1 ms overhead per call (86% of the call)...``.

        The overhead is the host's side of a call only (the caller's and the callee's own legs
        are not in it), so the saving is a lower bound.
        """
        p95 = ""
        if self.caller_p95_ms is not None and self.caller_p95_after_ms is not None:
            p95 = f"; {self.caller} p95 {self.caller_p95_ms:.0f} -> ~{self.caller_p95_after_ms:.0f} ms"
        return (
            f"{self.calls_per_min:,.0f} calls/min, {self.overhead_ms:.1f} ms overhead per call "
            f"({self.overhead_share:.0%} of the call): saves at least {self.overhead_ms:.1f} ms "
            f"per call and {self.mb_s_per_call_saved * self.calls_per_min / 1024:,.2f} GB-s/min "
            f"(${self.dollars_per_month:,.2f}/month){p95}"
        )


def fusion_estimate(facts: Mapping[str, Any], memory_mb: float) -> FusionEstimate | None:
    """The saving of fusing this function into its caller, or None without the figures."""
    calls = extra_number(facts, "calls_per_min")
    overhead = extra_number(facts, "invoke_overhead_ms")
    share = extra_number(facts, "invoke_overhead_share")
    caller_mb = extra_number(facts, "caller_memory_mb")
    if calls is None or overhead is None or share is None or caller_mb is None:
        return None
    own = extra_number(facts, "own_duration_ms") or 0.0
    saved_mb_ms = overhead * caller_mb + own * memory_mb
    per_call = extra_number(facts, "calls_per_caller_invocation") or 0.0
    p95 = extra_number(facts, "caller_p95_ms")
    after = None if p95 is None else max(0.0, p95 - overhead * per_call)
    price_gb_s = extra_number(facts, "price_gb_s") or LAMBDA_PRICE_GB_S
    price_request = extra_number(facts, "price_per_request") or LAMBDA_PRICE_PER_REQUEST
    per_minute = saved_mb_ms / 1000 / 1024 * price_gb_s + price_request
    return FusionEstimate(
        caller=evidence_of(facts).get("caller", "") or "its caller",
        calls_per_min=calls,
        overhead_ms=overhead,
        overhead_share=share,
        caller_p95_ms=p95,
        caller_p95_after_ms=after,
        mb_s_per_call_saved=saved_mb_ms / 1000,
        dollars_per_month=per_minute * calls * _MINUTES_PER_MONTH,
    )


def _switched_off(value: int | None, provider_cannot: str, already: str) -> Plan | None:
    """Why a switch (0 or 1) cannot be turned on: the provider lacks it, or it is on; else None."""
    if value is None:
        return not_applicable(f"this provider {provider_cannot}")
    if value:
        return not_applicable(f"it {already} already")
    return None


def fused_memory_need(facts: Mapping[str, Any]) -> float | None:
    """What the caller would need fused: its own peak and this function's, in MB."""
    caller_peak = extra_number(facts, "caller_peak_memory_mb")
    own_peak = fact_number(facts, "peak_memory_mb")
    if caller_peak is None or own_peak is None:
        return None
    return caller_peak + own_peak


class Fuse(BaseAction):
    """Run a private function inside its one caller: ``context.invoke`` becomes an in-process call.

    For a function called by one caller only, where the invocation overhead is a large
    share of each call (from traces).  The callee keeps its own code, environment and
    timeout; the caller's memory must hold both peaks within ``memory_headroom`` of its
    memory, else the fusion is not planned and the owners are told what the caller needs.
    Verified on the caller's p95, and rolled back when the pair's cost per call rose.

    Example::

        - action: fuse
          memory_headroom: 0.9
    """

    action: Literal["fuse"] = "fuse"
    memory_headroom: float = Field(
        0.9,
        gt=0.0,
        le=1.0,
        description="Share of the caller's memory the two peaks together may take.",
    )
    min_caller_share: float = Field(
        0.9, gt=0.0, le=1.0, description="Share of its invocations its one caller must make."
    )
    knob: ClassVar[Knob | None] = Knob.FUSED
    symptom: ClassVar[str | None] = "extra.caller_p95_ms"
    must_not_rise: ClassVar[tuple[str, ...]] = ("extra.pair_mb_s_per_call",)

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Fuse into the one caller when the function is private and the pair fits its memory."""
        off = _switched_off(config.fused, "cannot fuse functions", "runs inside its caller")
        if off is not None:
            return off
        callers = extra_number(facts, "callers")
        if callers != 1.0:
            count = "no" if callers is None else f"{callers:.0f}"
            return not_applicable(
                f"{count} callers in its traces: only a private function is fused"
            )
        share = extra_number(facts, "caller_share") or 0.0
        if share < self.min_caller_share:
            return not_applicable(
                f"its caller makes {share:.0%} of its invocations: it is invoked from outside too"
            )
        estimate = fusion_estimate(facts, config.memory_mb)
        if estimate is None:
            return not_applicable("no traced calls measure the invocation overhead")
        need = fused_memory_need(facts)
        caller_mb = extra_number(facts, "caller_memory_mb") or 0.0
        if need is None or need > self.memory_headroom * caller_mb:
            known = "unknown" if need is None else f"about {need:.0f} MB"
            return not_applicable(
                f"fused, {estimate.caller} would need {known} (its peak and this function's) "
                f"of its {caller_mb:.0f} MB: raise its memory first"
            )
        return Plan(Change(Knob.FUSED, 0, 1), f"fuse into {estimate.caller}: {estimate.describe()}")


class SplitPath(BaseAction):
    """Move the code path that holds most of a function's memory into a function of its own.

    Where that path is a function fused into its caller by an earlier decision (the
    local host), the fusion is undone: it runs in its own worker with its own memory
    again.  Elsewhere the path is part of the function's code, and the owners get the
    proposal (the path's ``file:line``, and its saving against more memory for all).

    Example::

        - action: split-path
          min_share: 0.6
    """

    action: Literal["split-path"] = "split-path"
    min_share: float = Field(
        0.6, gt=0.0, le=1.0, description="Share of the peak the fused code must hold."
    )
    knob: ClassVar[Knob | None] = Knob.FUSED
    symptom: ClassVar[str | None] = "extra.caller_peak_memory_mb"

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Split a fused function out of its caller again when its code holds the caller's peak."""
        share = extra_number(facts, "fused_memory_share")
        if not config.fused or share is None:
            return not_applicable("the path is part of the function's own code")
        if share < self.min_share:
            return not_applicable(f"its code holds {share:.0%} of its caller's peak")
        held = extra_number(facts, "fused_memory_mb") or 0.0
        caller = evidence_of(facts).get("caller", "") or "its caller"
        return Plan(
            Change(Knob.FUSED, 1, 0),
            f"split out of {caller} again: its code held {held:.0f} MB ({share:.0%}) of "
            f"{caller}'s peak; on its own it runs with its own {config.memory_mb} MB",
        )


class NearReplica(BaseAction):
    """Call a far dependency's nearest declared replica instead of the dependency itself.

    The "copy" remedy for data latency that is mostly distance: a read replica near the
    function.  Needs a provider that knows the replicas (the local host's
    ``dependencies.yaml``).

    Example::

        - action: near-replica
    """

    action: Literal["near-replica"] = "near-replica"
    knob: ClassVar[Knob | None] = Knob.NEAR_REPLICA
    symptom: ClassVar[str | None] = "dependency_latency_p95_ms"
    must_not_rise: ClassVar[tuple[str, ...]] = ("dependency_latency_p95_ms",)

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Switch to the nearest replica where one nearer than the dependency is declared."""
        off = _switched_off(
            config.near_replica, "knows no replicas of dependencies", "calls the nearest replica"
        )
        if off is not None:
            return off
        near = extra_number(facts, "replica_distance_ms")
        far = extra_number(facts, "dependency_distance_ms")
        replica = evidence_of(facts).get("nearest_replica", "")
        if near is None or far is None or not replica:
            return not_applicable("no replica nearer than the dependency is declared")
        p95 = fact_number(facts, "dependency_latency_p95_ms")
        estimate = f": p95 {p95:.0f} -> ~{max(0.0, p95 - far + near):.0f} ms" if p95 else ""
        return Plan(
            Change(Knob.NEAR_REPLICA, 0, 1),
            f"read from {replica} ({near:g} ms away instead of {far:g} ms){estimate}",
        )


class ZoneAffinity(BaseAction):
    """Prefer to schedule the function's pods in the zone of its far dependency.

    A preferred pod affinity, never a required one (which could leave pods
    unschedulable), towards the pods behind the dependency's Service.  Kubernetes only.
    Verified on the dependency's p95, and rolled back when it rose.

    Example::

        - action: zone-affinity
          weight: 100
    """

    action: Literal["zone-affinity"] = "zone-affinity"
    weight: int = Field(100, ge=1, le=100, description="The preferred affinity's weight.")
    knob: ClassVar[Knob | None] = Knob.ZONE_AFFINITY
    symptom: ClassVar[str | None] = "dependency_latency_p95_ms"
    must_not_rise: ClassVar[tuple[str, ...]] = ("dependency_latency_p95_ms",)

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Add the affinity where the pods run in none of the dependency's zones."""
        current = config.zone_affinity
        if current is None:
            return not_applicable("this provider cannot place the function near a dependency")
        if current > 0:  # whoever set it, and whatever its weight: left as it is
            return not_applicable(f"it prefers the dependency's zone already (weight {current})")
        if extra_number(facts, "zone_mismatch") != 1.0:
            return not_applicable("its pods share a zone with the dependency already")
        where = evidence_of(facts).get("far_dependency", "")
        return Plan(
            Change(Knob.ZONE_AFFINITY, current, self.weight),
            f"prefer the dependency's zone (weight {self.weight})"
            + (f": {where}" if where else ""),
        )
