"""The guard: decides which planned decisions may happen, by mode, cooldown, hysteresis and caps.

Pure: it reads the planned decisions and the recent history of applied changes and
returns each decision with its outcome settled (or, for those that may go ahead,
``Outcome.APPLIED`` as the intent; the loop turns that into FAILED when applying fails).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tuner.model import Decision, FunctionRef, Knob, Mode, Outcome, Severity

DAY_S = 86_400.0
HOUR_S = 3_600.0


@dataclass(frozen=True)
class GuardPolicy:
    """Limits on what tuner may change; set in tuner.yaml under ``guard``."""

    mode: Mode = Mode.APPLY
    max_changes_per_cycle: int = 20
    max_changes_per_hour: int = 60
    max_changes_per_function_per_day: int = 8
    hysteresis_s: float = 6 * HOUR_S
    """A knob is not moved back the other way within this time of a change."""
    min_invocations: int = 1
    """A change needs at least this many invocations in the window: no data, no action."""


_CHANGED = (Outcome.APPLIED, Outcome.ROLLED_BACK, Outcome.APPLYING)
"""Outcomes of past decisions whose change is, or may be, live (applying: a crash left it open)."""
_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def _direction(decision: Decision) -> int:
    change = decision.change
    if change is None or change.before is None:
        return 0
    return (change.after > change.before) - (change.after < change.before)


def guard(
    planned: Sequence[Decision],
    history: Sequence[Decision],
    cooldowns: Mapping[str, float],
    policy: GuardPolicy,
    now: float,
) -> list[Decision]:
    """Settle the outcome of each planned decision; most severe first.

    ``history`` holds the applied decisions of at least the last day; ``cooldowns`` maps
    a rule name to its cooldown in seconds.
    """
    last: dict[tuple[FunctionRef, Knob], Decision] = {}
    per_function_day: Counter[FunctionRef] = Counter()
    in_last_hour = 0
    for past in history:
        if past.change is not None and past.outcome in _CHANGED:
            last[(past.ref, past.change.knob)] = past
            if past.time > now - DAY_S:
                per_function_day[past.ref] += 1
            if past.time > now - HOUR_S:
                in_last_hour += 1
    this_cycle = 0
    touched: set[tuple[FunctionRef, Knob]] = set()
    settled: list[Decision] = []
    for d in sorted(planned, key=lambda d: _SEVERITY_ORDER[d.severity]):
        outcome, reason = _settle(
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
        if outcome is Outcome.APPLIED and d.change is not None:
            this_cycle += 1
            touched.add((d.ref, d.change.knob))
            per_function_day[d.ref] += 1
        settled.append(d.with_outcome(outcome, reason))
    return settled


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
) -> tuple[Outcome, str]:
    mode = d.mode if d.mode.rank <= policy.mode.rank else policy.mode
    change = d.change
    if change is None:
        return (Outcome.OBSERVED, "") if mode is Mode.OBSERVE else (Outcome.NOTIFIED, "")
    invocations = d.facts.get("invocations")
    if not isinstance(invocations, (int, float)) or invocations < policy.min_invocations:
        return Outcome.SKIPPED, "no data in the window: no action"
    if mode is Mode.OBSERVE:
        return Outcome.OBSERVED, ""
    key = (d.ref, change.knob)
    if key in touched:
        return Outcome.SKIPPED, f"{change.knob.value} is already changed in this cycle"
    previous = last.get(key)
    if previous is not None:
        cooldown = cooldowns.get(d.rule, 0.0)
        if now - previous.time < cooldown:
            wait = cooldown - (now - previous.time)
            return (
                Outcome.SKIPPED,
                f"cooldown: {change.knob.value} changed {now - previous.time:.0f} s ago, {wait:.0f} s to go",
            )
        if _direction(previous) * _direction(d) < 0 and now - previous.time < policy.hysteresis_s:
            return (
                Outcome.SKIPPED,
                f"hysteresis: {change.knob.value} moved the other way {now - previous.time:.0f} s ago",
            )
    if mode is Mode.RECOMMEND:
        return Outcome.RECOMMENDED, ""
    if this_cycle >= policy.max_changes_per_cycle:
        return Outcome.SKIPPED, f"cap: {policy.max_changes_per_cycle} changes per cycle"
    if in_last_hour >= policy.max_changes_per_hour:
        return Outcome.SKIPPED, f"cap: {policy.max_changes_per_hour} changes per hour"
    if per_function_day.get(d.ref, 0) >= policy.max_changes_per_function_per_day:
        return (
            Outcome.SKIPPED,
            f"cap: {policy.max_changes_per_function_per_day} changes per function per day",
        )
    return Outcome.APPLIED, ""
