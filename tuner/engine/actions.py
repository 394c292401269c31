"""Actions: strategies that turn a firing rule into a concrete change, clamped to limits.

Each action is a typed model whose fields are its YAML parameters; its ``plan`` method
looks at the function's configuration and the window's facts and either proposes a
:class:`~tuner.domain.model.Change` or says why it cannot.  The JSON Schema of rule files is
generated from these models, so the schema and the code cannot drift apart.

:data:`ACTIONS` is the registry: a plain constant built here, never mutated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from tuner.domain.durations import Duration
from tuner.domain.model import Change, FunctionConfig, Knob, Lasting, Limits, fact_number
from tuner.domain.registry import Entry, Registry
from tuner.engine.sizing import (
    margin_basis,
    monthly_saving,
    oom_need,
    smallest_in_time,
    steady_need,
    with_margin,
)


@dataclass(frozen=True, slots=True)
class Plan:
    """What an action proposes: a change, or none with the reason why."""

    change: Change | None
    summary: str
    reason: str = ""

    @property
    def applicable(self) -> bool:
        """True when the action has something to change (or is notify-only by design)."""
        return not self.reason


def _not(reason: str) -> Plan:
    return Plan(change=None, summary="", reason=reason)


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(round(value / step, 6)) * step)  # 190 x 1.1 is 209, not 210


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    knob: ClassVar[Knob | None] = None
    symptom: ClassVar[str | None] = None
    """The fact that must fall after this action for the change to count as helping."""
    monotone: ClassVar[bool] = False
    """True when enough of the knob meets the need (memory): while the symptom stays, the
    next step is due, and the change is never rolled back to a value known to fail."""
    temporary: ClassVar[bool] = False
    """True when the change ends by itself (tracing for a while): it is not judged as a fix,
    it expires."""

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Propose a change for this function, or say why there is none."""
        raise NotImplementedError


class MoreMemory(_Action):
    """Raise memory to what the failing invocations need plus a margin, in one step.

    The need comes from the evidence the provider gives (see :mod:`tuner.engine.sizing`): the
    peak of a killed invocation re-run at a higher limit (a probe), how memory grows with
    payload size or over a worker's life, or the traced peak and failed allocation of a
    killed invocation.  The margin is kept over the part of the need that grows with the
    payload or a worker's age where a growth model tells it apart from the fixed part
    (:func:`tuner.engine.sizing.with_margin`).  Without such evidence, memory goes to the peak of
    the surviving invocations plus the margin; when that peak is unknown or sits at the
    limit (the real need is unknown) memory grows geometrically, up to ``max_mb`` or the
    provider's cap.

    Example::

        - action: more-memory
          margin: 0.25
          growth: 2.0
          max_mb: 3008
    """

    action: Literal["more-memory"] = "more-memory"
    margin: float = Field(
        0.2,
        ge=0.0,
        le=4.0,
        description="Headroom over the need; over its growing part where a growth model splits it.",
    )
    growth: float = Field(2.0, gt=1.0, le=8.0, description="Factor when the real need is unknown.")
    max_mb: int | None = Field(None, ge=64, description="Never go above this.")
    only_if_cpu_scales: bool = Field(
        False, description="Apply only where more memory also buys CPU (to speed a slow function)."
    )
    knob: ClassVar[Knob | None] = Knob.MEMORY_MB
    symptom: ClassVar[str | None] = "oom_rate"
    monotone: ClassVar[bool] = True

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Size memory from the evidence of need, else from the peak, else geometrically."""
        if self.only_if_cpu_scales and not limits.cpu_scales_with_memory:
            return _not("more memory buys no CPU on this provider")
        current = config.memory_mb
        peak = fact_number(facts, "peak_memory_mb")
        cap = min(limits.memory_max_mb, self.max_mb or limits.memory_max_mb)
        if current >= cap:
            return _not(f"memory is already at the cap ({cap} MB)")
        need = oom_need(facts, current) if (fact_number(facts, "ooms") or 0) > 0 else None
        if need is not None and need.lower_bound:
            wanted = max(need.mb * (1.0 + self.margin), current * self.growth)
            basis = f"x{self.growth:g} at least: {need.basis}, still growing at the limit"
        elif need is not None:
            wanted = with_margin(need, self.margin)
            basis = f"needs {need.mb:.0f} MB {margin_basis(need, self.margin)}: {need.basis}"
        elif peak is not None and peak < 0.95 * current:
            wanted = peak * (1.0 + self.margin)
            basis = f"from a {peak:.0f} MB peak + {self.margin:.0%}"
            if wanted <= current:
                wanted = current * self.growth
                basis = f"x{self.growth:g}: the {peak:.0f} MB peak fits, the failures did not"
        else:
            wanted = current * self.growth
            basis = f"x{self.growth:g}: killed at the limit, real need unknown"
        after = min(cap, max(limits.memory_min_mb, _round_up(wanted, limits.memory_step_mb)))
        return Plan(
            Change(Knob.MEMORY_MB, current, after), f"memory {current} -> {after} MB ({basis})"
        )


class LessMemory(_Action):
    """Lower memory to the largest evidence of need plus a margin (right-sizing).

    The basis is the highest of the window's peak, the provider's lookback peak
    (``extra.lookback_peak_memory_mb``) and the growth models of :mod:`tuner.engine.sizing`, so
    memory never goes below the largest peak seen; the margin is kept over the part of the
    need that grows where a growth model tells it apart.  Where CPU scales with memory and the
    CPU time is known, memory stays high enough that the function runs at most
    ``max_slowdown`` times its fastest mean duration of the lookback
    (``extra.lookback_duration_avg_ms_min``, else today's), so that successive
    right-sizings do not compound, and keeps clear of its timeout.  Never on missing
    data, never while invocations run out of memory; the summary states the saving in
    dollars a month.

    Example::

        - action: less-memory
          margin: 0.3
    """

    action: Literal["less-memory"] = "less-memory"
    margin: float = Field(
        0.3,
        ge=0.1,
        le=4.0,
        description="Headroom kept over the need; over its growing part where a model splits it.",
    )
    min_saving: float = Field(0.2, gt=0.0, lt=1.0, description="Skip savings below this share.")
    max_slowdown: float = Field(
        1.2,
        ge=1.0,
        le=4.0,
        description="Longest mean duration allowed, as a factor of the fastest of the lookback.",
    )
    knob: ClassVar[Knob | None] = Knob.MEMORY_MB

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Size memory down from the largest evidence of need, keeping a margin and speed."""
        peak = fact_number(facts, "peak_memory_mb")
        if peak is None or peak <= 0:
            return _not("no peak memory measured: memory is never lowered on missing data")
        if (fact_number(facts, "ooms") or 0) > 0:
            return _not("invocations ran out of memory: memory is never lowered then")
        need = steady_need(facts)
        assert need is not None  # the window's peak is evidence
        current = config.memory_mb
        wanted = with_margin(need, self.margin)
        basis = f"{need.basis} {margin_basis(need, self.margin)}"
        timing = smallest_in_time(facts, self.max_slowdown, limits.cpu_scales_with_memory)
        slowed = timing is not None and timing[0] > wanted
        if timing is not None and slowed:
            wanted, basis = timing[0], f"{basis}; no lower: {timing[1]}"
        after = max(limits.memory_min_mb, _round_up(wanted, limits.memory_step_mb))
        if after > current * (1.0 - self.min_saving):
            if slowed and timing is not None:
                return _not(f"less memory would slow it: {timing[1]}")
            return _not(f"saving below {self.min_saving:.0%}")
        saving = monthly_saving(facts, current, after)
        if saving is not None and saving <= 0:
            return _not("no saving: the function would run longer at less memory")
        money = f"; saves about ${saving:,.2f} a month at this traffic" if saving else ""
        summary = f"memory {current} -> {after} MB ({basis}{money})"
        return Plan(Change(Knob.MEMORY_MB, current, after), summary)


class LongerTimeout(_Action):
    """Raise the timeout above the observed duration tail.

    The basis is the longest observed duration (at least the current timeout when
    invocations hit it, since their real duration is unknown) times ``factor``.

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

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Timeout from the duration tail times a factor."""
        current = config.timeout_s
        if current is None:
            return _not("the function has no timeout setting")
        cap = min(limits.timeout_max_s, self.max_s or limits.timeout_max_s)
        if current >= cap:
            return _not(f"timeout is already at the cap ({cap:g} s)")
        tail_ms = (
            fact_number(facts, "duration_max_ms") or fact_number(facts, "duration_p99_ms") or 0.0
        )
        timed_out = (fact_number(facts, "timeouts") or 0.0) > 0
        basis_s = max(tail_ms / 1000.0, current if timed_out else 0.0)
        if basis_s <= 0:
            return _not("no duration measured")
        after = float(min(cap, max(limits.timeout_min_s, math.ceil(basis_s * self.factor))))
        if after <= current:
            return _not("the duration tail fits the current timeout")
        summary = f"timeout {current:g} -> {after:g} s (tail {basis_s:.1f} s x{self.factor:g})"
        return Plan(Change(Knob.TIMEOUT_S, current, after), summary)


class SmallerBatches(_Action):
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
            return _not("the function has no batch size")
        if batch <= limits.batch_min:
            return _not(f"batch size is already at the minimum ({limits.batch_min})")
        after = max(limits.batch_min, int(batch * self.factor))
        basis = f"x{self.factor:g}"
        extra = facts.get("extra")
        per_record = (
            fact_number(extra, "duration_per_record_ms") if isinstance(extra, Mapping) else None
        )
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


class FanOut(_Action):
    """Split each payload into more parallel parts (map-reduce).

    Example::

        - action: fan-out
          factor: 2
    """

    action: Literal["fan-out"] = "fan-out"
    factor: int = Field(2, ge=2, le=16, description="Multiply the number of parts by this.")
    knob: ClassVar[Knob | None] = Knob.FAN_OUT
    symptom: ClassVar[str | None] = "timeout_rate"

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Multiply the fan-out, up to the provider's cap."""
        current = config.fan_out
        if current is None:
            return _not("the function does not support fan-out")
        if current >= limits.fan_out_max:
            return _not(f"fan-out is already at the cap ({limits.fan_out_max})")
        after = min(limits.fan_out_max, max(1, current) * self.factor)
        return Plan(Change(Knob.FAN_OUT, current, after), f"fan-out {current} -> {after} parts")


class LessConcurrency(_Action):
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
            return _not("the function has no concurrency setting")
        after = max(limits.concurrency_min, int(current * self.factor))
        if after >= current:
            return _not("concurrency is already at the minimum")
        return Plan(Change(Knob.CONCURRENCY, current, after), f"concurrency {current} -> {after}")


class EnableCache(_Action):
    """Turn on the function's cache with a time-to-live.

    Example::

        - action: enable-cache
          ttl_s: 300
    """

    action: Literal["enable-cache"] = "enable-cache"
    ttl_s: int = Field(300, ge=1, le=86_400, description="Cache time-to-live in seconds.")
    knob: ClassVar[Knob | None] = Knob.CACHE_TTL_S
    symptom: ClassVar[str | None] = "duration_p95_ms"

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Switch the cache on unless it is on already."""
        current = config.cache_ttl_s
        if current is None:
            return _not("the function has no cache setting")
        if current > 0:
            return _not(f"the cache is already on (ttl {current} s)")
        return Plan(Change(Knob.CACHE_TTL_S, current, self.ttl_s), f"cache on (ttl {self.ttl_s} s)")


class Notify(_Action):
    """Change nothing; tell the owners (for what a machine must not fix).

    Example::

        - action: notify
    """

    action: Literal["notify"] = "notify"

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Never a change."""
        return Plan(change=None, summary="notify the owners")


class Trace(_Action):
    """Trace a misbehaving function for a while, so that the next decision has evidence.

    Tracing goes to ``sample_rate`` (1: every invocation) for the next ``invocations``
    invocations or ``for`` a time (exactly one of the two), then back to the function's
    own setting by itself; the host enforces the end even if tuner stops.  It is a change
    like any other (the guard's modes, cooldowns and caps apply), but not a fix: it is not
    judged on the symptom, it expires.  Providers that cannot trace say so.

    Example::

        - action: trace
          invocations: 20
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"oneOf": [{"required": ["invocations"]}, {"required": ["for"]}]},
    )

    action: Literal["trace"] = "trace"
    for_s: Duration | None = Field(
        None, alias="for", description="Trace for this long, e.g. 10m (or give `invocations`)."
    )
    invocations: int | None = Field(
        None,
        ge=1,
        le=100_000,
        validate_default=True,
        description="Trace the next N invocations (or give `for`).",
    )
    sample_rate: float = Field(
        1.0, gt=0.0, le=1.0, description="Share of invocations traced meanwhile (1: all)."
    )
    knob: ClassVar[Knob | None] = Knob.TRACING
    temporary: ClassVar[bool] = True

    @field_validator("for_s")
    @classmethod
    def _some_time(cls, value: float | None) -> float | None:
        """A time longer than 0."""
        if value is not None and value <= 0:
            raise ValueError("must be longer than 0 s")
        return value

    @field_validator("invocations")
    @classmethod
    def _one_limit(cls, value: int | None, info: ValidationInfo) -> int | None:
        """Exactly one of ``invocations`` and ``for``."""
        if "for_s" in info.data and (info.data["for_s"] is None) == (value is None):
            given = "neither was given" if value is None else "both were given"
            raise ValueError(f"give exactly one of 'invocations' or 'for' ({given})")
        return value

    @property
    def lasting(self) -> Lasting:
        """How long the tracing lasts."""
        return Lasting(invocations=self.invocations, seconds=self.for_s)

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Switch tracing on for a while, unless it cannot be or already traces this much."""
        current = config.tracing
        if current is None:
            return _not("this provider cannot switch tracing on")
        if current >= self.sample_rate:
            return _not(f"tracing is already on for a while ({current:.0%} of the invocations)")
        extra = facts.get("extra")
        traced = fact_number(extra, "traced_invocations") if isinstance(extra, Mapping) else None
        invocations = fact_number(facts, "invocations")
        if traced and invocations and traced >= invocations:
            return _not("every invocation is traced already")
        lasting = self.lasting
        share = (
            "every invocation"
            if self.sample_rate >= 1
            else f"{self.sample_rate:.0%} of the invocations"
        )
        return Plan(
            Change(Knob.TRACING, current, self.sample_rate, lasting),
            f"trace {share} {lasting.describe()}, then back to its own setting",
        )


Action = Annotated[
    MoreMemory
    | LessMemory
    | LongerTimeout
    | SmallerBatches
    | FanOut
    | LessConcurrency
    | EnableCache
    | Notify
    | Trace,
    Field(discriminator="action"),
]
"""Any action of a rule, told apart by its ``action`` field."""


def _entry(cls: type[_Action]) -> Entry[type[_Action]]:
    summary = (cls.__doc__ or "").split("\n")[0]
    return Entry(cls.model_fields["action"].default, lambda: cls, settings=cls, summary=summary)


ACTIONS: Registry[type[_Action]] = Registry(
    "action", [_entry(cls) for cls in get_args(get_args(Action)[0])]
)
"""The registry of actions, derived from :data:`Action` (the one list to edit)."""


def clamp(config: FunctionConfig, limits: Limits, change: Change) -> Change:
    """Clamp a change to the provider's limits (for changes that come from outside a plan)."""
    value = change.after
    if change.knob is Knob.MEMORY_MB:
        value = min(
            limits.memory_max_mb, max(limits.memory_min_mb, _round_up(value, limits.memory_step_mb))
        )
    elif change.knob is Knob.TIMEOUT_S:
        value = min(limits.timeout_max_s, max(limits.timeout_min_s, float(value)))
    elif change.knob is Knob.BATCH_SIZE:
        value = min(limits.batch_max, max(limits.batch_min, int(value)))
    elif change.knob is Knob.FAN_OUT:
        value = min(limits.fan_out_max, max(1, int(value)))
    elif change.knob is Knob.CONCURRENCY:
        value = min(limits.concurrency_max, max(limits.concurrency_min, int(value)))
    return Change(change.knob, config.get(change.knob), value)
