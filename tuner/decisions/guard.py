"""The guard: decides which planned decisions may happen, by mode, cooldown, hysteresis and caps.

Pure: a :class:`Budget` holds what the recent history of applied changes leaves this cycle
(the caps' room, each knob's last change, the knobs changed already); :func:`guard` takes
the planned decisions and a budget and hands back each decision with the guard's
:class:`~tuner.domain.lifecycle.Verdict`, spending the budget on those it lets go ahead.
A decision held back carries a typed :class:`~tuner.domain.holds.Hold`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tuner.domain.decisions import Decision
from tuner.domain.durations import Duration
from tuner.domain.holds import Cap, Hold, HoldKind
from tuner.domain.lifecycle import LIVE, State, Verdict
from tuner.domain.model import Change, FunctionRef, Knob, Mode, Severity, fact_number
from tuner.domain.times import DAY_S, HOUR_S


class GuardPolicy(BaseModel):
    """Limits on what tuner may change; set in tuner.yaml under ``guard``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    max_changes_per_cycle: int = Field(20, ge=0)
    max_changes_per_hour: int = Field(60, ge=0)
    max_changes_per_function_per_day: int = Field(8, ge=0)
    hysteresis_s: Duration = Field(
        6 * HOUR_S,
        alias="hysteresis",
        description="A knob is not moved back the other way within this time of a change.",
    )
    undone_s: Duration = Field(
        7 * DAY_S,
        alias="undone",
        description=(
            "A rule does not lower a knob again within this time of a lowering of its own "
            "that was rolled back."
        ),
    )
    min_invocations: int = Field(
        1,
        ge=1,
        description="A change needs this many invocations in the window: no data, no action.",
    )

    @property
    def fleet_cap(self) -> Hold:
        """The hold of a change that waits for the fleet's caps (one for both caps)."""
        limits = (self.max_changes_per_cycle, self.max_changes_per_hour)
        return Hold(HoldKind.CAP, cap=Cap.FLEET, limits=limits)


_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def history_span(cooldowns: Mapping[str, float], policy: GuardPolicy) -> float:
    """How far back the guard must see: a day (the daily cap), the longest cooldown and holds."""
    return max(DAY_S, policy.hysteresis_s, policy.undone_s, *cooldowns.values(), 0.0)


def failed_invocations(facts: Mapping[str, Any]) -> float:
    """The invocations that failed in the window the facts describe (0 when unknown)."""
    return fact_number(facts, "errors") or 0.0


def urgency(severity: Severity, facts: Mapping[str, Any]) -> tuple[int, float]:
    """The guard's order: most severe first; of one severity, the most failed invocations."""
    return _SEVERITY_ORDER[severity], -failed_invocations(facts)


@dataclass
class Budget:
    """What the recent history leaves for this cycle: the caps' room and each knob's last change.

    Built once a cycle from the applied decisions of at least :func:`history_span`
    (:meth:`start`); :meth:`admit` gives a decision its verdict and spends the budget on
    it when it may go ahead.  :meth:`copy` gives a budget to try an order on (planning asks
    whether the caps would be full at a finding, without deciding anything).
    """

    policy: GuardPolicy
    cooldowns: Mapping[str, float]
    now: float
    last: dict[tuple[FunctionRef, Knob], Decision] = field(default_factory=dict)
    per_function_day: Counter[FunctionRef] = field(default_factory=Counter)
    in_last_hour: int = 0
    this_cycle: int = 0
    touched: set[tuple[FunctionRef, Knob]] = field(default_factory=set)
    undone: dict[tuple[FunctionRef, Knob, str], Decision] = field(default_factory=dict)
    """Per function, knob and rule: its latest lowering that was rolled back."""

    @classmethod
    def start(
        cls,
        history: Iterable[Decision],
        cooldowns: Mapping[str, float],
        policy: GuardPolicy,
        now: float,
    ) -> Budget:
        """The budget a cycle starts with, from the changes applied before it."""
        budget = cls(policy, cooldowns, now)
        for past in history:
            if past.change is not None and past.state in LIVE:
                budget.last[(past.ref, past.change.knob)] = past
                if past.state is State.ROLLED_BACK and past.change.direction < 0:
                    budget.undone[(past.ref, past.change.knob, past.rule)] = past
                if past.time > now - DAY_S:
                    budget.per_function_day[past.ref] += 1
                if past.time > now - HOUR_S:
                    budget.in_last_hour += 1
        return budget

    @property
    def full(self) -> bool:
        """True when the fleet's changes are used up for this cycle or this hour."""
        policy = self.policy
        return (
            self.this_cycle >= policy.max_changes_per_cycle
            or self.in_last_hour + self.this_cycle >= policy.max_changes_per_hour
        )

    def copy(self) -> Budget:
        """An independent copy, to try an order on (the history it was built from is shared)."""
        return replace(
            self, per_function_day=Counter(self.per_function_day), touched=set(self.touched)
        )

    def admit(self, d: Decision) -> tuple[Verdict, Hold | None]:
        """The guard's verdict on one decision and what held it; spends the budget on ``apply``."""
        verdict, hold = self._verdict(d)
        if verdict is Verdict.APPLY and d.change is not None:
            self.this_cycle += 1
            self.touched.add((d.ref, d.change.knob))
            self.per_function_day[d.ref] += 1
        return verdict, hold

    def _verdict(self, d: Decision) -> tuple[Verdict, Hold | None]:
        change, policy = d.change, self.policy
        if change is None:
            return (Verdict.OBSERVE if d.mode is Mode.OBSERVE else Verdict.NOTIFY), None
        invocations = d.facts.get("invocations")
        if not isinstance(invocations, (int, float)) or invocations < policy.min_invocations:
            return Verdict.SKIP, Hold(HoldKind.NO_DATA)
        if d.mode is Mode.OBSERVE:
            return Verdict.OBSERVE, None
        key = (d.ref, change.knob)
        if key in self.touched:
            return Verdict.SKIP, Hold(HoldKind.TOUCHED, knob=change.knob)
        held = self._recently_changed(d, change)
        if held is not None:
            return Verdict.SKIP, held
        if d.mode is Mode.RECOMMEND:
            return Verdict.RECOMMEND, None
        if self.full:
            return Verdict.SKIP, policy.fleet_cap
        per_day = policy.max_changes_per_function_per_day
        if self.per_function_day.get(d.ref, 0) >= per_day:
            return Verdict.SKIP, Hold(HoldKind.CAP, cap=Cap.FUNCTION_DAY, limits=(per_day,))
        return Verdict.APPLY, None

    def _recently_changed(self, d: Decision, change: Change) -> Hold | None:
        """A cooldown, hysteresis or undone hold when the knob changed too recently.

        A lowering that was rolled back (it made things worse) is not made again by the
        same rule within ``undone``: once the hysteresis ended, the same facts would make
        it again, and it would be rolled back again (the knob would flap).
        """
        undone = self.undone.get((d.ref, change.knob, d.rule))
        if undone is not None and change.direction < 0:
            until = undone.time + self.policy.undone_s
            if self.now < until:
                return Hold(HoldKind.UNDONE, change.knob, since=undone.time, until=until)
        previous = self.last.get((d.ref, change.knob))
        if previous is None:
            return None
        cooldown = self.cooldowns.get(d.rule, 0.0)
        if self.now - previous.time < cooldown:
            until = previous.time + cooldown
            return Hold(HoldKind.COOLDOWN, change.knob, since=previous.time, until=until)
        hysteresis = self.policy.hysteresis_s
        back = previous.change is not None and previous.change.direction * change.direction < 0
        if back and self.now - previous.time < hysteresis:
            until = previous.time + hysteresis
            return Hold(HoldKind.HYSTERESIS, change.knob, since=previous.time, until=until)
        return None


def guard(planned: Sequence[Decision], budget: Budget) -> list[Decision]:
    """Give each planned decision the guard's verdict: most severe first, then most failing.

    Each decision's ``mode`` is already the stricter of the global mode and its rule's
    (planning settles it).  A decision that comes settled already (a change held back for
    the fleet's cap, planned again as it was) is kept as it is when the guard says the same.
    """
    settled: list[Decision] = []
    for d in sorted(planned, key=lambda d: urgency(d.severity, d.facts)):
        verdict, hold = budget.admit(d)
        if d.verdict is not verdict or d.hold != hold:
            d = d.with_verdict(verdict, hold=hold)
        settled.append(d)
    return settled
