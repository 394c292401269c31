"""Memory actions: raise memory to the evidence of need in one step, or lower it to the need."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from tuner.domain.model import Change, FunctionConfig, Knob, Limits, fact_number
from tuner.engine.actions.base import BaseAction, Plan, not_applicable
from tuner.engine.measured import measured_floor
from tuner.engine.sizing import (
    also_said,
    margin_basis,
    monthly_saving,
    oom_evidence,
    smallest_in_time,
    steady_need,
    strongest,
    with_margin,
)


class MoreMemory(BaseAction):
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
            return not_applicable("more memory buys no CPU on this provider")
        current = config.memory_mb
        peak = fact_number(facts, "peak_memory_mb")
        cap = min(limits.memory_max_mb, self.max_mb or limits.memory_max_mb)
        if current >= cap:
            return not_applicable(f"memory is already at the cap ({cap} MB)")
        ooms = (fact_number(facts, "ooms") or 0) > 0
        evidence = oom_evidence(facts, current) if ooms else []
        need = strongest(evidence)
        if not ooms and self.only_if_cpu_scales:
            wanted = current * self.growth
            basis = f"x{self.growth:g}: more memory buys more CPU on this provider"
        elif need is not None and need.lower_bound:
            wanted = max(need.mb * (1.0 + self.margin), current * self.growth)
            basis = (
                f"x{self.growth:g} at least, from {need.source}: {need.basis},"
                f" still growing at the limit{also_said(evidence, need)}"
            )
        elif need is not None:
            wanted = with_margin(need, self.margin)
            basis = (
                f"from {need.source}: needs {need.mb:.0f} MB {margin_basis(need, self.margin)}:"
                f" {need.basis}{also_said(evidence, need)}"
            )
        elif peak is not None and peak < 0.95 * current:
            wanted = peak * (1.0 + self.margin)
            basis = f"from the survivors' peak: {peak:.0f} MB + {self.margin:.0%}"
            if wanted <= current:
                wanted = current * self.growth
                basis = f"blind x{self.growth:g}: the {peak:.0f} MB peak fits, the failures did not"
        else:
            wanted = current * self.growth
            basis = (
                f"blind x{self.growth:g}: killed at the limit, and no probe or trace measured"
                " its need"
            )
        after = int(min(cap, limits.clamp(Knob.MEMORY_MB, wanted)))
        return Plan(
            Change(Knob.MEMORY_MB, current, after), f"memory {current} -> {after} MB ({basis})"
        )


class LessMemory(BaseAction):
    """Lower memory to the largest evidence of need plus a margin (right-sizing).

    The basis is the highest of the window's peak, the provider's lookback peak
    (``extra.lookback_peak_memory_mb``) and the growth models of :mod:`tuner.engine.sizing`, so
    memory never goes below the largest peak seen; the margin is kept over the part of the
    need that grows where a growth model tells it apart.  Where CPU scales with memory and the
    CPU time is known, memory stays high enough that the function runs at most
    ``max_slowdown`` times its fastest mean duration of the lookback
    (``extra.lookback_duration_avg_ms_min``, else today's), so that successive
    right-sizings do not compound, and keeps clear of its timeout.  It never goes below
    the cheapest size measured on real traffic where a smaller one cost more
    (:func:`tuner.engine.measured.measured_floor`).  Never on missing data, never while
    invocations run out of memory; the summary states the saving in dollars a month.

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
            return not_applicable(
                "no peak memory measured: memory is never lowered on missing data"
            )
        if (fact_number(facts, "ooms") or 0) > 0:
            return not_applicable("invocations ran out of memory: memory is never lowered then")
        need = steady_need(facts)
        assert need is not None  # the window's peak is evidence
        current = config.memory_mb
        wanted = with_margin(need, self.margin)
        basis = f"{need.basis} {margin_basis(need, self.margin)}"
        timing = smallest_in_time(facts, self.max_slowdown, limits.cpu_scales_with_memory)
        slowed = timing is not None and timing[0] > wanted
        if timing is not None and slowed:
            wanted, basis = timing[0], f"{basis}; no lower: {timing[1]}"
        floor = measured_floor(facts)
        dearer = floor is not None and floor > wanted
        if floor is not None and dearer:
            wanted, basis = floor, f"{basis}; no lower: smaller sizes cost more on real traffic"
        after = int(limits.clamp(Knob.MEMORY_MB, wanted))
        if after > current * (1.0 - self.min_saving):
            if dearer:
                return not_applicable("smaller sizes cost more per invocation on real traffic")
            if slowed and timing is not None:
                return not_applicable(f"less memory would slow it: {timing[1]}")
            return not_applicable(f"saving below {self.min_saving:.0%}")
        saving = monthly_saving(facts, current, after)
        if saving is not None and saving <= 0:
            return not_applicable("no saving: the function would run longer at less memory")
        money = f"; saves about ${saving:,.2f} a month at this traffic" if saving else ""
        summary = f"memory {current} -> {after} MB ({basis}{money})"
        return Plan(Change(Knob.MEMORY_MB, current, after), summary)
