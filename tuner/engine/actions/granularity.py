"""Time and granularity actions: a longer timeout, smaller batches, more parts, less concurrency."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from tuner.domain.model import Change, FunctionConfig, Knob, Limits, extra_number, fact_number
from tuner.engine.actions.base import BaseAction, Plan, not_applicable


class LongerTimeout(BaseAction):
    """Raise the timeout above the observed duration tail.

    The basis is the longest observed duration (at least the current timeout when
    invocations hit it, since their real duration is unknown) times ``factor``, up to
    ``max_s`` or the provider's limit.  A timeout that invocations hit is known to be too
    short: a longer one that has not helped yet is kept, and the next step follows.

    Example::

        - action: longer-timeout
          factor: 1.5
          max_s: 300
    """

    action: Literal["longer-timeout"] = "longer-timeout"
    factor: float = Field(1.5, gt=1.0, le=10.0, description="Multiplier over the duration tail.")
    max_s: float | None = Field(None, gt=0, description="Never go above this.")
    knob: ClassVar[Knob | None] = Knob.TIMEOUT_S
    symptom: ClassVar[str | None] = "timeout_rate"
    monotone: ClassVar[bool] = True

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Timeout from the duration tail times a factor."""
        current = config.timeout_s
        if current is None:
            return not_applicable("the function has no timeout setting")
        cap = min(limits.timeout_max_s, self.max_s or limits.timeout_max_s)
        if current >= cap:
            return not_applicable(f"timeout is already at the cap ({cap:g} s)")
        tail_ms = (
            fact_number(facts, "duration_max_ms") or fact_number(facts, "duration_p99_ms") or 0.0
        )
        timed_out = (fact_number(facts, "timeouts") or 0.0) > 0
        basis_s = max(tail_ms / 1000.0, current if timed_out else 0.0)
        if basis_s <= 0:
            return not_applicable("no duration measured")
        after = float(min(cap, limits.clamp(Knob.TIMEOUT_S, math.ceil(basis_s * self.factor))))
        if after <= current:
            return not_applicable("the duration tail fits the current timeout")
        summary = f"timeout {current:g} -> {after:g} s (tail {basis_s:.1f} s x{self.factor:g})"
        return Plan(Change(Knob.TIMEOUT_S, current, after), summary)


class SmallerBatches(BaseAction):
    """Give each invocation fewer records, so one invocation fits in its timeout.

    With a measured time per record (``extra.duration_per_record_ms``) the batch is sized
    to use ``target_fraction`` of the timeout; otherwise it shrinks by ``factor``.

    Example::

        - action: smaller-batches
          factor: 0.5
          target_fraction: 0.6
    """

    action: Literal["smaller-batches"] = "smaller-batches"
    factor: float = Field(
        0.5, gt=0.0, lt=1.0, description="Shrink factor without a per-record time."
    )
    target_fraction: float = Field(0.6, gt=0.0, le=1.0, description="Share of the timeout to use.")
    knob: ClassVar[Knob | None] = Knob.BATCH_SIZE
    symptom: ClassVar[str | None] = "timeout_rate"

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Batch size from the time per record, else a fixed shrink factor."""
        batch = config.batch_size
        if batch is None:
            return not_applicable("the function has no batch size")
        if batch <= limits.batch_min:
            return not_applicable(f"batch size is already at the minimum ({limits.batch_min})")
        after = int(limits.clamp(Knob.BATCH_SIZE, batch * self.factor))
        basis = f"x{self.factor:g}"
        per_record = extra_number(facts, "duration_per_record_ms")
        timeout_ms = fact_number(facts, "timeout_ms")
        if per_record and timeout_ms:
            sized = int(self.target_fraction * timeout_ms / per_record)
            if limits.batch_min <= sized < batch:
                after, basis = (
                    sized,
                    f"{per_record:.0f} ms per record, {self.target_fraction:.0%} of the timeout",
                )
        return Plan(
            Change(Knob.BATCH_SIZE, batch, after), f"batch size {batch} -> {after} ({basis})"
        )


class FanOut(BaseAction):
    """Split each payload into more parallel parts (map-reduce).

    Only where the payloads split: a provider that tells which events it can split
    (``extra.split_share``, e.g. the local host, which splits list events) gets no fan-out
    for a function whose failing events it cannot split, since the change could not help.

    Example::

        - action: fan-out
          factor: 2
    """

    action: Literal["fan-out"] = "fan-out"
    factor: int = Field(2, ge=2, le=16, description="Multiply the number of parts by this.")
    knob: ClassVar[Knob | None] = Knob.FAN_OUT
    symptom: ClassVar[str | None] = "timeout_rate"

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Multiply the fan-out, up to the provider's cap, where the events split."""
        current = config.fan_out
        if current is None:
            return not_applicable("the function does not support fan-out")
        if current >= limits.fan_out_max:
            return not_applicable(f"fan-out is already at the cap ({limits.fan_out_max})")
        split = extra_number(facts, "split_share")
        if split == 0:
            return not_applicable(
                "its events do not split: fan-out divides a list event over parts, and the"
                " failing events are not lists"
            )
        after = int(limits.clamp(Knob.FAN_OUT, max(1, current) * self.factor))
        return Plan(Change(Knob.FAN_OUT, current, after), f"fan-out {current} -> {after} parts")


class LessConcurrency(BaseAction):
    """Serve fewer requests per instance (Knative ``containerConcurrency``).

    Example::

        - action: less-concurrency
          factor: 0.5
    """

    action: Literal["less-concurrency"] = "less-concurrency"
    factor: float = Field(0.5, gt=0.0, lt=1.0)
    knob: ClassVar[Knob | None] = Knob.CONCURRENCY
    symptom: ClassVar[str | None] = "error_rate"

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Shrink per-instance concurrency by a factor."""
        current = config.concurrency
        if not current:
            return not_applicable("the function has no concurrency setting")
        after = int(limits.clamp(Knob.CONCURRENCY, current * self.factor))
        if after >= current:
            return not_applicable("concurrency is already at the minimum")
        return Plan(Change(Knob.CONCURRENCY, current, after), f"concurrency {current} -> {after}")
