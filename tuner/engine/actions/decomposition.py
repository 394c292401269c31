"""Decomposition actions: hand a job's state to a fresh invocation, or split its payload.

They change how a function runs, not its size, and need the function's code to use
tuner_handler (a fact says so: ``extra.supports_handover``, ``extra.supports_split``).
The bundled rules try handover and split after a longer timeout and more memory, which
the provider or the function's ceiling no longer allows; they split only the large
payloads before more memory, where those alone fail.  See docs/remedies.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from tuner.domain.model import Change, FunctionConfig, Knob, Limits, extra_number, fact_number
from tuner.engine.actions.base import BaseAction, Plan, not_applicable
from tuner.engine.sizing import largest_payload_seen, oom_evidence, probe_need, strongest


def _count(value: float | None) -> str:
    return f"{value or 0:.0f}"


def _why_not_split(setting: float | None, facts: Mapping[str, Any]) -> str:
    """Why a split cannot help now ('' when it may): the setting, the code, or no OOM."""
    if setting is None:
        return "the function cannot be split on this provider"
    if not extra_number(facts, "supports_split"):
        return "its code does not use tuner_handler's split"
    if not fact_number(facts, "ooms"):
        return "no invocation ran out of memory"
    return ""


class Handover(BaseAction):
    """Switch handover on: an invocation hands its state to a fresh one before its timeout.

    For a function whose code uses tuner_handler's handover (``extra.supports_handover``)
    and that times out where its timeout cannot grow.  The margin is ``margin`` of the
    timeout, at least ``min_s``; the library adds the longest step it has seen, so that a
    step never runs into the timeout.  Judged on the timeouts, and never improved while
    chains fail (``extra.chains_failed``).

    Example::

        - action: handover
          margin: 0.1
    """

    action: Literal["handover"] = "handover"
    margin: float = Field(
        0.1, gt=0.0, lt=0.5, description="Share of the timeout left for handing over."
    )
    min_s: float = Field(0.2, gt=0.0, le=60.0, description="Never a shorter margin.")
    knob: ClassVar[Knob | None] = Knob.HANDOVER_S
    symptom: ClassVar[str | None] = "timeout_rate"
    failure: ClassVar[str | None] = "chains_failed"

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """A margin from the timeout, where the code can hand over and it is off."""
        current, timeout = config.handover_s, config.timeout_s
        if current is None or timeout is None:
            return not_applicable("the function has no handover setting on this provider")
        if not extra_number(facts, "supports_handover"):
            return not_applicable("its code does not use tuner_handler's handover")
        if current > 0:
            return not_applicable(f"handover is already on ({current:g} s before the timeout)")
        margin = max(self.min_s, self.margin * timeout)
        if margin >= 0.5 * timeout:
            return not_applicable(f"a {timeout:g} s timeout leaves no room for a margin")
        after = round(float(limits.clamp(Knob.HANDOVER_S, margin)), 3)
        summary = (
            f"handover on, {after:g} s before the {timeout:g} s timeout: each invocation hands"
            " its state to the next, which carries on"
        )
        return Plan(Change(Knob.HANDOVER_S, current, after), summary)

    @classmethod
    def account(cls, after: Mapping[str, Any]) -> str:
        """``handover on: 3 links, 0 timeouts`` (and the failed chains, if any)."""
        links, failed = extra_number(after, "chain_links_max"), extra_number(after, "chains_failed")
        text = (
            f"handover on: {_count(links)} links, {_count(fact_number(after, 'timeouts'))} timeouts"
        )
        return text + (f", {_count(failed)} chains failed" if failed else "")


class Split(BaseAction):
    """Split each payload into parts, as many as make each part fit the memory it has.

    For a function whose code uses tuner_handler's split (``extra.supports_split``) and
    that runs out of memory where memory cannot grow.  The need is the strongest evidence
    of the failing invocations (:func:`tuner.engine.sizing.oom_evidence`: a probe, the
    payload model, a trace); the part of it no split divides is the fixed part the growth
    model tells, else a worker's memory with its handler loaded
    (``extra.runtime_memory_mb``).  With ``k`` parts now, a need ``N`` of which ``F`` is
    fixed, and memory ``M``: ``k * (N - F) * (1 + margin) / (M - F)`` parts, rounded up;
    ``k * growth`` where nothing measured the need.  Judged on the OOMs, and never improved
    while splits fail (``extra.splits_failed``).

    Example::

        - action: split
          margin: 0.1
    """

    action: Literal["split"] = "split"
    margin: float = Field(0.1, ge=0.0, le=4.0, description="Headroom over each part's share.")
    growth: int = Field(2, ge=2, le=16, description="Factor of parts where the need is unknown.")
    knob: ClassVar[Knob | None] = Knob.FAN_OUT
    symptom: ClassVar[str | None] = "oom_rate"
    failure: ClassVar[str | None] = "splits_failed"

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Parts from the need and the memory, where the code splits and memory ran out."""
        current = config.fan_out
        why_not = _why_not_split(current, facts)
        if why_not or current is None:
            return not_applicable(why_not)
        if current >= limits.fan_out_max:
            return not_applicable(f"it is already split into the most parts ({current})")
        memory = config.memory_mb
        need = strongest(oom_evidence(facts, memory))
        if need is None:
            wanted = current * self.growth
            basis = f"x{self.growth}: nothing measured what the failing invocations need"
        else:
            fixed = need.fixed_mb or extra_number(facts, "runtime_memory_mb") or 0.0
            room = memory - fixed
            if room < 0.1 * memory:
                return not_applicable(f"{fixed:.0f} MB of fixed need leaves no room to split")
            wanted = math.ceil(current * (need.mb - fixed) * (1.0 + self.margin) / room)
            if need.lower_bound:
                wanted = max(wanted, current * self.growth)
            basis = (
                f"from {need.source}: {need.mb:.0f} MB, {fixed:.0f} MB of it fixed, in parts of"
                f" {memory} MB + {self.margin:.0%}: {need.basis}"
            )
        after = int(limits.clamp(Knob.FAN_OUT, max(wanted, current + 1)))
        return Plan(Change(Knob.FAN_OUT, current, after), f"split into {after} parts ({basis})")

    @classmethod
    def account(cls, after: Mapping[str, Any]) -> str:
        """``split into 4 parts: 0 OOMs, results merged`` (or how many splits failed)."""
        parts = extra_number(after, "split_parts_max") or fact_number(after, "fan_out")
        splits, failed = extra_number(after, "splits"), extra_number(after, "splits_failed")
        merged = (
            f"{_count(failed)} of {_count(splits)} splits failed"
            if failed
            else ("results merged" if splits else "no split ran")
        )
        ooms = _count(fact_number(after, "ooms"))
        return f"split into {_count(parts)} parts: {ooms} OOMs, {merged}"


class SplitLarge(BaseAction):
    """Split only the large payloads, where rare ones far larger than the rest run out of memory.

    For a function whose code uses tuner_handler's split (``extra.supports_split``) and
    whose few failing invocations (at most ``max_share`` of them) needed at least
    ``min_factor`` times its memory: rather than give every invocation the memory of the
    rare large one, an event above a size runs as parts of at most that size, each of
    which fits the memory the function has.  The size comes from a probe of a failing
    invocation (its payload ``extra.probe_payload_kb`` and the peak it reached): on the
    line from the part of the need no split divides (the need at an empty payload a
    growth model tells, else ``extra.runtime_memory_mb``, else nothing) through that
    point, the payload whose need plus ``margin`` fits the memory.  A fixed part taken too
    low makes the parts too large: each part then needs more than the line says.  Judged
    on the OOMs, and never improved while splits fail (``extra.splits_failed``).

    Example::

        - action: split-large
          margin: 0.1
    """

    action: Literal["split-large"] = "split-large"
    margin: float = Field(0.1, ge=0.0, le=4.0, description="Headroom over each part's need.")
    max_share: float = Field(
        0.01, gt=0.0, le=1.0, description="The most invocations, as a share, that may fail."
    )
    min_factor: float = Field(
        1.25, ge=1.0, description="How many times the memory a failing invocation must need."
    )
    knob: ClassVar[Knob | None] = Knob.SPLIT_ABOVE_KB
    symptom: ClassVar[str | None] = "oom_rate"
    failure: ClassVar[str | None] = "splits_failed"

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """A split size from a probe, where the failures are rare and far over the memory."""
        current = config.split_above_kb
        why_not = _why_not_split(current, facts)
        if why_not or current is None:
            return not_applicable(why_not)
        ooms, invocations = fact_number(facts, "ooms") or 0.0, fact_number(facts, "invocations")
        if not invocations or ooms > self.max_share * invocations:
            return not_applicable(
                f"{ooms:.0f} of {invocations or 0:.0f} ran out of memory: not rare"
            )
        need, payload = probe_need(facts), extra_number(facts, "probe_payload_kb")
        if need is None or need.lower_bound or not payload:
            return not_applicable("no probe measured a failing invocation's payload and need")
        memory = config.memory_mb
        if need.mb < self.min_factor * memory:
            return not_applicable(f"it needed {need.mb:.0f} MB: more memory is simpler")
        model_base = extra_number(facts, "memory_base_mb")
        fixed = need.fixed_mb or model_base or extra_number(facts, "runtime_memory_mb") or 0.0
        peak = extra_number(facts, "probe_peak_memory_mb") or need.mb
        room = memory / (1.0 + self.margin) - fixed
        if room <= 0 or peak <= fixed:
            return not_applicable(f"{fixed:.0f} MB of fixed need leaves no room for a part")
        above = math.floor(payload * room / (peak - fixed))
        largest = max(payload, largest_payload_seen(facts) or 0.0)
        if above < 1 or math.ceil(largest / above) > limits.fan_out_max:
            return not_applicable(
                f"a {largest:.0f} KB payload would need over {limits.fan_out_max} parts"
            )
        if current and current <= above:
            return not_applicable(f"payloads over {current} KB are split already")
        after = int(limits.clamp(Knob.SPLIT_ABOVE_KB, above))
        summary = (
            f"split payloads over {after} KB into parts of at most that size (from its probe:"
            f" {payload:.0f} KB peaked at {peak:.0f} MB, {fixed:.0f} MB of it fixed; a part"
            f" fits {memory} MB + {self.margin:.0%})"
        )
        return Plan(Change(Knob.SPLIT_ABOVE_KB, current, after), summary)

    @classmethod
    def account(cls, after: Mapping[str, Any]) -> str:
        """``large payloads split: 0 OOMs`` (and how many splits failed, if any)."""
        failed = extra_number(after, "splits_failed")
        text = f"large payloads split: {_count(fact_number(after, 'ooms'))} OOMs"
        return text + (f", {_count(failed)} splits failed" if failed else "")
