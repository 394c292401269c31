"""The guard: decides which planned decisions may happen, by mode, cooldown, hysteresis and caps.

Pure: it reads the planned decisions and the recent history of applied changes and
returns each decision with the guard's :class:`~tuner.domain.lifecycle.Verdict` and the state it
leads to (``applying`` for those that may go ahead; the loop carries them on from there).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tuner.domain.durations import Duration
from tuner.domain.lifecycle import LIVE, Verdict
from tuner.domain.model import Change, Decision, FunctionRef, Knob, Mode, Severity, fact_number

DAY_S = 86_400.0
HOUR_S = 3_600.0


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
    min_invocations: int = Field(
        1,
        ge=1,
        description="A change needs this many invocations in the window: no data, no action.",
    )


_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def _same_way(previous: Decision, change: Change) -> bool:
    """True unless the change moves the knob back the other way from the previous change."""
    return previous.change is None or previous.change.direction * change.direction >= 0


def _utc(t: float) -> str:
    """A time as ISO 8601 UTC to the second; a reason that names times, not ages, stays the
    same from cycle to cycle, so a change held back is one repeated decision."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fleet_cap(policy: GuardPolicy) -> str:
    """Why a change waits for the fleet's caps: one text for both, so that a change held
    back cycle after cycle, by one cap then the other, is one repeated decision."""
    return (
        f"cap: the fleet's changes are used up (at most {policy.max_changes_per_cycle} "
        f"per cycle and {policy.max_changes_per_hour} per hour)"
    )


@dataclass(frozen=True, slots=True)
class Deferred:
    """A finding planned only when the guard comes to it, when it knows if the fleet's caps are full.

    ``plan(capped)`` returns the finding's decisions, all of ``severity`` (its rule's).
    ``capped`` is True when the fleet's changes are used up for this cycle or hour: every
    change among them that reaches the caps is then held back, whatever it is, so a
    planner may answer from what it planned for the same finding before
    (:class:`tuner.decisions.planning.HeldPlans`) instead of sizing the change again.  Such a
    decision may come settled already (held back for the fleet's cap): the guard settles
    it again, and keeps it as it is when it comes to the same verdict and reason.
    """

    severity: Severity
    plan: Callable[[bool], Sequence[Decision]]
    failing: float = 0.0
    """Invocations that failed in the finding's window: of one severity, most first."""


def history_span(cooldowns: Mapping[str, float], policy: GuardPolicy) -> float:
    """How far back the guard must see: a day (the daily cap), the longest cooldown and hysteresis."""
    return max(DAY_S, policy.hysteresis_s, *cooldowns.values(), 0.0)


def guard(
    planned: Sequence[Decision | Deferred],
    history: Sequence[Decision],
    cooldowns: Mapping[str, float],
    policy: GuardPolicy,
    now: float,
) -> list[Decision]:
    """Give each planned decision the guard's verdict; most severe first, then most failing.

    ``history`` holds the applied decisions of at least :func:`history_span`; ``cooldowns``
    maps a rule name to its cooldown in seconds.  Each decision's ``mode`` is already the
    stricter of the global mode and its rule's (planning settles it).  A :class:`Deferred`
    finding is planned in its place in that order, so the result is the same as if it had
    been planned before.
    """
    last: dict[tuple[FunctionRef, Knob], Decision] = {}
    per_function_day: Counter[FunctionRef] = Counter()
    in_last_hour = 0
    for past in history:
        if past.change is not None and past.state in LIVE:
            last[(past.ref, past.change.knob)] = past
            if past.time > now - DAY_S:
                per_function_day[past.ref] += 1
            if past.time > now - HOUR_S:
                in_last_hour += 1
    this_cycle = 0
    touched: set[tuple[FunctionRef, Knob]] = set()
    settled: list[Decision] = []
    for item in sorted(planned, key=_urgency):
        if isinstance(item, Deferred):
            used = in_last_hour + this_cycle >= policy.max_changes_per_hour
            batch = item.plan(used or this_cycle >= policy.max_changes_per_cycle)
        else:
            batch = (item,)
        for d in batch:
            verdict, reason = _settle(
                d,
                last,
                touched,
                per_function_day,
                in_last_hour + this_cycle,
                this_cycle,
                cooldowns,
                policy,
                now,
            )
            if verdict is Verdict.APPLY and d.change is not None:
                this_cycle += 1
                touched.add((d.ref, d.change.knob))
                per_function_day[d.ref] += 1
            if d.verdict is not verdict or d.reason != reason:
                d = d.with_verdict(verdict, reason)
            settled.append(d)  # a deferred finding's decision may come settled already
    return settled


def _urgency(item: Decision | Deferred) -> tuple[int, float]:
    """Most severe first; of one severity, the finding with the most failed invocations."""
    if isinstance(item, Deferred):
        return _SEVERITY_ORDER[item.severity], -item.failing
    return _SEVERITY_ORDER[item.severity], -failed_invocations(item.facts)


def failed_invocations(facts: Mapping[str, Any]) -> float:
    """The invocations that failed in the window the facts describe (0 when unknown)."""
    return fact_number(facts, "errors") or 0.0


def _settle(
    d: Decision,
    last: Mapping[tuple[FunctionRef, Knob], Decision],
    touched: set[tuple[FunctionRef, Knob]],
    per_function_day: Mapping[FunctionRef, int],
    in_last_hour: int,
    this_cycle: int,
    cooldowns: Mapping[str, float],
    policy: GuardPolicy,
    now: float,
) -> tuple[Verdict, str]:
    change = d.change
    if change is None:
        return (Verdict.OBSERVE, "") if d.mode is Mode.OBSERVE else (Verdict.NOTIFY, "")
    invocations = d.facts.get("invocations")
    if not isinstance(invocations, (int, float)) or invocations < policy.min_invocations:
        return Verdict.SKIP, "no data in the window: no action"
    if d.mode is Mode.OBSERVE:
        return Verdict.OBSERVE, ""
    key = (d.ref, change.knob)
    if key in touched:
        return Verdict.SKIP, f"{change.knob.value} is already changed in this cycle"
    previous = last.get(key)
    if previous is not None:
        cooldown = cooldowns.get(d.rule, 0.0)
        if now - previous.time < cooldown:
            return (
                Verdict.SKIP,
                f"cooldown: {change.knob.value} changed at {_utc(previous.time)}, "
                f"not again before {_utc(previous.time + cooldown)}",
            )
        if not _same_way(previous, change) and now - previous.time < policy.hysteresis_s:
            return (
                Verdict.SKIP,
                f"hysteresis: {change.knob.value} moved the other way at {_utc(previous.time)}, "
                f"not back before {_utc(previous.time + policy.hysteresis_s)}",
            )
    if d.mode is Mode.RECOMMEND:
        return Verdict.RECOMMEND, ""
    if this_cycle >= policy.max_changes_per_cycle or in_last_hour >= policy.max_changes_per_hour:
        return Verdict.SKIP, fleet_cap(policy)
    if per_function_day.get(d.ref, 0) >= policy.max_changes_per_function_per_day:
        return (
            Verdict.SKIP,
            f"cap: {policy.max_changes_per_function_per_day} changes per function per day",
        )
    return Verdict.APPLY, ""
