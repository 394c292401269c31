"""Trial actions: measure the cost of other memory sizes on real traffic, then take the cheapest.

Where more memory buys CPU, a larger size can cost less; only measuring tells (see
:mod:`tuner.engine.measured`).  ``try-memory`` runs a share of the real traffic at another
size for a while (a temporary change, never judged as a fix), and ``cheapest-memory``
sets memory to the cheapest size measured once the search has bracketed it.  Neither
makes up an invocation: every one measured is a real request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from tuner.domain.model import Change, FunctionConfig, Knob, Lasting, Limits
from tuner.engine.actions.base import BaseAction, Plan, not_applicable
from tuner.engine.measured import Measured, measured, next_trial
from tuner.engine.sizing import smallest_in_time, steady_need, with_margin


class _Search(BaseAction):
    """The bounds of the search: the need plus a margin, and speed, below; the largest size above."""

    margin: float = Field(
        0.1, ge=0.0, le=4.0, description="Headroom over the need: no size below it is tried."
    )
    max_slowdown: float = Field(
        1.3,
        ge=1.0,
        le=4.0,
        description="No size is tried where the mean duration would exceed this factor of "
        "the fastest of the lookback.",
    )

    def search(self, limits: Limits, facts: Mapping[str, Any]) -> Search | None:
        """Where the search stands, or None before any cost was measured."""
        found, need = measured(facts), steady_need(facts)
        if found is None or need is None:
            return None
        timing = smallest_in_time(facts, self.max_slowdown, limits.cpu_scales_with_memory)
        floor = max(with_margin(need, self.margin), timing[0] if timing else 0.0)
        return Search(found, floor, next_trial(found, floor, limits.memory_max_mb))


@dataclass(frozen=True, slots=True)
class Search:
    """Where the search for the cheapest size stands."""

    found: Measured
    floor_mb: float
    """The least memory it may go to: the need plus the margin, and fast enough."""
    next_mb: float | None
    """The next size to try; None when the cheapest is bracketed."""


class TryMemory(_Search):
    """Run a share of the real traffic at another memory size for a while, to measure its cost.

    The size is the next step of a search for the cheapest size (out by half as much
    again, up first, then between the sizes measured), never below the need plus
    ``margin`` nor where the function would run more than ``max_slowdown`` times slower
    than its fastest.  The function's own size serves the rest of the traffic; the trial
    ends by itself after ``invocations``.

    Example::

        - action: try-memory
          invocations: 20
    """

    action: Literal["try-memory"] = "try-memory"
    invocations: int = Field(
        20, ge=1, le=100_000, description="Real invocations run at the size tried."
    )
    knob: ClassVar[Knob | None] = Knob.MEMORY_TRIAL_MB
    temporary: ClassVar[bool] = True

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """The next size to try, unless trials are impossible, under way or done."""
        current = config.memory_trial_mb
        if current is None:
            return not_applicable("this provider cannot try a size on part of the traffic")
        if current > 0:
            return not_applicable(f"a trial at {current} MB is under way")
        search = self.search(limits, facts)
        if search is None:
            return not_applicable("no cost measured at today's size yet")
        cheapest = search.found.cheapest_mb
        if search.next_mb is None:
            return not_applicable(f"the cheapest size measured, {cheapest:.0f} MB, is found")
        after = int(limits.clamp(Knob.MEMORY_MB, search.next_mb))
        lasting = Lasting(invocations=self.invocations)
        return Plan(
            Change(Knob.MEMORY_TRIAL_MB, 0, after, lasting),
            f"try {after} MB on a share of the traffic {lasting.describe()} (the cheapest "
            f"measured so far: {cheapest:.0f} MB; memory stays {config.memory_mb} MB)",
        )


class CheapestMemory(_Search):
    """Set memory to the cheapest size measured on real traffic, once the search bracketed it.

    Only when it saves at least ``min_saving`` per invocation and is within the search's
    bounds (a size measured before the largest requests came may be below the need now).
    Judged by ``measured_excess_cost``: how much more today's size costs than the cheapest.

    Example::

        - action: cheapest-memory
          min_saving: 0.05
    """

    action: Literal["cheapest-memory"] = "cheapest-memory"
    min_saving: float = Field(
        0.05, gt=0.0, lt=1.0, description="Skip savings per invocation below this share."
    )
    knob: ClassVar[Knob | None] = Knob.MEMORY_MB
    symptom: ClassVar[str | None] = "measured_excess_cost"

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """The cheapest size measured, when the search is done and it saves enough."""
        search = self.search(limits, facts)
        ratio = search.found.cost_ratio if search is not None else None
        if search is None or ratio is None:
            return not_applicable("no cost measured at today's size yet")
        if search.next_mb is not None:
            return not_applicable("still measuring other sizes")
        found = search.found
        saving = 1.0 - ratio
        if saving < self.min_saving:
            return not_applicable(f"saving below {self.min_saving:.0%} per invocation")
        if found.cheapest_mb < search.floor_mb:
            return not_applicable("the cheapest size measured is below the need or too slow")
        after = int(limits.clamp(Knob.MEMORY_MB, found.cheapest_mb))
        if after == config.memory_mb:
            return not_applicable("memory is the cheapest size measured already")
        return Plan(
            Change(Knob.MEMORY_MB, config.memory_mb, after),
            f"memory {config.memory_mb} -> {after} MB (the cheapest size measured on real "
            f"traffic: an invocation costs {saving:.0%} less there)",
        )
