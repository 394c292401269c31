"""Trial actions: measure the cost of other memory sizes on real traffic, then take the cheapest.

Where more memory buys CPU, a larger size can cost less; only measuring tells (see
:mod:`tuner.engine.measured`, whose search the facts ``measured_trial_mb`` and
``measured_excess_cost`` report).  ``try-memory`` runs a share of the real traffic at the
next size for a while (a temporary change, never judged as a fix), and
``cheapest-memory`` sets memory to the cheapest size measured once the search has
bracketed it.  Neither makes up an invocation: every one measured is a real request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from tuner.domain.model import Change, FunctionConfig, Knob, Lasting, Limits, fact_number
from tuner.engine.actions.base import BaseAction, Plan, not_applicable
from tuner.engine.measured import measured, search


class TryMemory(BaseAction):
    """Run a share of the real traffic at the next size of the search for a while.

    The size is ``measured_trial_mb``: out by half as much again (up first), then between
    the sizes measured, within the search's bounds.  The function's own size serves the
    rest of the traffic; the trial ends by itself after ``invocations``.

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
        size = fact_number(facts, "measured_trial_mb")
        found = measured(facts)
        if size is None or found is None:
            return not_applicable("no size left to try")
        after = int(limits.clamp(Knob.MEMORY_MB, size))
        lasting = Lasting(invocations=self.invocations)
        return Plan(
            Change(Knob.MEMORY_TRIAL_MB, 0, after, lasting),
            f"try {after} MB on a share of the traffic {lasting.describe()} (the cheapest "
            f"measured so far: {found.cheapest_mb:.0f} MB; memory stays {config.memory_mb} MB)",
        )


class CheapestMemory(BaseAction):
    """Set memory to the cheapest size measured on real traffic, once the search bracketed it.

    Where that size is below the search's lower bound (the need + 10%, 30% slower than its
    fastest), memory goes to the bound: above the cheapest, the cost only rises.  Only when
    an invocation costs at least ``min_saving`` less there (``measured_excess_cost``, which
    also judges the change: it falls to 0).

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
        """The cheapest size it may go to, when the search is done and it saves enough."""
        found = search(facts, limits.cpu_scales_with_memory, limits.memory_max_mb)
        if found is None or found.excess_cost is None:
            return not_applicable("no cheaper size measured that the function may run at")
        if found.next_mb is not None:
            return not_applicable("still measuring other sizes")
        saving = 1.0 - 1.0 / (1.0 + found.excess_cost)
        if saving < self.min_saving:
            return not_applicable(f"saving below {self.min_saving:.0%} per invocation")
        after = int(limits.clamp(Knob.MEMORY_MB, math.ceil(found.target_mb)))
        if after == config.memory_mb:
            return not_applicable("memory is the cheapest size it may go to already")
        if found.target_mb == found.found.cheapest_mb:
            why = (
                "the cheapest size measured on real traffic: "
                f"an invocation costs {saving:.0%} less there"
            )
        else:
            why = (
                f"the least it may run at, above the cheapest size measured "
                f"({found.found.cheapest_mb:.0f} MB): an invocation costs about {saving:.0%} less"
            )
        return Plan(
            Change(Knob.MEMORY_MB, config.memory_mb, after),
            f"memory {config.memory_mb} -> {after} MB ({why})",
        )
