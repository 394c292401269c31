"""Verification: what later windows say about an applied change, and what to do about it.

Pure.  :func:`judge` holds the whole policy: which windows may count (none from before
the change, none that may still hold invocations from before it for "nothing changed"),
how many windows to wait, when to give up on a quiet function, when a change helped
only partly, and when it is rolled back (it made things worse, or it only cost more).
The loop records what it returns and carries out a rollback; it decides nothing itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.model import FunctionConfig, Knob, extra_number, fact_number
from tuner.engine.actions import BaseAction, action_class
from tuner.engine.conditions import Condition

COST_KNOBS = frozenset(
    {Knob.MEMORY_MB, Knob.TIMEOUT_S, Knob.FAN_OUT, Knob.SPLIT_ABOVE_KB, Knob.HANDOVER_S}
)
"""Knobs whose increase costs money (splitting from 0 on): raising one that does not help
is rolled back."""
CALL_NEUTRAL_KNOBS = frozenset({Knob.MEMORY_MB, Knob.TIMEOUT_S})
"""Knobs that do not change what a function asks of its dependencies (unlike fan-out)."""
QUIET_FACTOR = 3
"""A change is kept unjudged after this many times ``windows`` windows without enough traffic."""

TOO_QUIET = "not enough traffic to judge the change: kept, not rolled back"
GONE = "the function no longer exists: not judged"
MADE_WORSE = "it made things worse"
ONLY_COST = "it cost more and did not help"
STILL_FAILING = "still failing at the new size: kept (not rolled back to a size known to fail)"
FOLLOWED_BY_TIMEOUTS = (
    "timeouts followed: invocations that now run on hit the timeout, a new symptom that the"
    " timeout rule decides on its own"
)
ENDED = (
    "ended: back to the function's own setting (its count or time ran out, or a person changed it)"
)


class VerifyPolicy(BaseModel):
    """Thresholds for calling a change worse; set in tuner.yaml under ``verify``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    windows: int = Field(
        3, ge=1, le=100, description="Windows after a change within which the problem must go away."
    )
    error_rate_increase: float = Field(
        0.10, gt=0, le=1, description="Absolute rise of the error rate that counts as worse."
    )
    latency_factor: float = Field(
        1.5, gt=1, description="p95 duration rising by this factor counts as worse."
    )
    min_invocations: int = Field(
        5, ge=1, description="Fewer invocations than this after a change: keep waiting."
    )
    rollback_unhelpful: bool = Field(
        True, description="Roll back a change that raised cost and did not help in ``windows``."
    )
    min_improvement: float = Field(
        0.2, gt=0, lt=1, description="The action's symptom must fall by at least this share."
    )


@dataclass(frozen=True)
class Judgement:
    """What one window says about an applied change.

    ``state`` is None while the verdict must wait for more windows; a judged state
    (improved, partial, unchanged, worse) for a change that stays; ``rolled-back`` when
    the change must be undone.  ``counted`` says whether the window counts towards
    the policy's windows; ``reason`` is the evidence (what moved) or why.
    """

    state: State | None
    reason: str = ""
    counted: bool = False

    @property
    def rollback(self) -> bool:
        """True when the change must be undone."""
        return self.state is State.ROLLED_BACK


_WAIT = Judgement(None)


def compare(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    action: type[BaseAction] | None,
    condition: Condition | None,
    policy: VerifyPolicy,
) -> State | None:
    """Compare one window after a change with the window that triggered it.

    None: too little traffic to tell, or a dependency began failing after a memory or
    timeout change (its errors are not the change's).  A change of a knob that enough of
    meets the need (memory, timeout) made for its symptom is judged on that symptom: the
    setting before is known to fail, and the invocations that now run on take longer or
    time out, a new symptom with its own rule; it is worse only when invocations fail more
    often in other ways.  Otherwise worse: the error rate rose, or the p95 duration rose
    without fewer errors.  For an action with a
    symptom (e.g. ``oom_rate`` for more memory) that was present before: improved when it
    fell by ``min_improvement`` to none (or the rule's condition no longer holds), partial
    when it fell but is still there and the condition still holds, else unchanged.
    Otherwise improved when the rule's condition no longer holds.
    """
    invocations = fact_number(after, "invocations")
    if invocations is None or invocations < policy.min_invocations:
        return None
    if _dependency_failing(before, after, action, policy):
        return None  # errors from a dependency that began failing say nothing of this change
    holds = condition is not None and condition.evaluate(after) is True
    symptom = action.symptom if action is not None else None
    was = named_fact(before, symptom) if symptom else None
    if symptom and was and action is not None and action.monotone:
        if _failing_otherwise(before, after, policy):
            return State.WORSE
        return _by_symptom(was, named_fact(after, symptom), holds, policy)
    rate_before, rate_after = fact_number(before, "error_rate"), fact_number(after, "error_rate")
    fewer_errors = False
    if rate_before is not None and rate_after is not None:
        if rate_after > rate_before + policy.error_rate_increase:
            return State.WORSE
        fewer_errors = rate_after < rate_before
    guarded = ("duration_p95_ms", *(action.must_not_rise if action is not None else ()))
    slower = any(_rose(before, after, name, policy.latency_factor) for name in guarded)
    if slower and not fewer_errors:
        return State.WORSE
    if symptom and was:
        return _by_symptom(was, named_fact(after, symptom), holds, policy)
    return State.UNCHANGED if holds else State.IMPROVED


def named_fact(facts: Mapping[str, Any], name: str) -> float | None:
    """A numeric fact by the name an action gives it: ``duration_p95_ms`` or ``extra.<name>``."""
    scope, dot, rest = name.partition(".")
    if dot and scope == "extra":
        return extra_number(facts, rest)
    return fact_number(facts, name)


def _rose(before: Mapping[str, Any], after: Mapping[str, Any], name: str, factor: float) -> bool:
    """True when a fact rose by ``factor`` or more from a known value."""
    was, now = named_fact(before, name), named_fact(after, name)
    return bool(was and now and now > was * factor)


def _by_symptom(was: float, now: float | None, holds: bool, policy: VerifyPolicy) -> State:
    """Improved, partial or unchanged, by how far the symptom fell."""
    if now is None or now > was * (1.0 - policy.min_improvement):
        return State.UNCHANGED
    return State.PARTIAL if now > 0 and holds else State.IMPROVED


def judge(
    decision: Decision,
    after: Mapping[str, Any],
    window_start: float,
    live: FunctionConfig,
    condition: Condition | None,
    policy: VerifyPolicy,
) -> Judgement:
    """Judge an applied change from one window observed after it.

    ``decision`` is the change (its facts are the window that triggered it, its
    ``judged_windows`` the windows counted so far); ``live`` is the function's
    configuration now.  A window that began before the change never counts.  Invocations
    in flight at the change finish within the function's timeout: a window that may
    still hold them can show that the change helped or hurt, never that nothing (or not
    enough) changed.  A temporary change (``trace``) is never judged on the symptom: it
    expires once the live knob no longer holds its value.
    """
    change = decision.change
    action = action_class(decision.action)
    if change is not None and action is not None and action.temporary:
        return _WAIT if live.get(change.knob) == change.after else Judgement(State.EXPIRED, ENDED)
    if change is None or decision.time > window_start:
        return _WAIT
    verdict = compare(decision.facts, after, action, condition, policy)
    if verdict is State.IMPROVED and _failed_at(action, after):
        verdict = State.PARTIAL  # the symptom went, but chains or splits failed instead
    in_flight = decision.time + (live.timeout_s or 0.0) > window_start
    if in_flight and verdict in (State.UNCHANGED, State.PARTIAL, None):
        return _WAIT  # invocations from before the change may be what still fails
    seen = decision.judged_windows + 1
    if verdict is None:
        if seen < QUIET_FACTOR * policy.windows:
            return Judgement(None, counted=True)
        return Judgement(State.UNCHANGED, TOO_QUIET, counted=True)
    if verdict is State.UNCHANGED and seen < policy.windows:
        return Judgement(None, counted=True)
    note = evidence(decision.facts, after, action) + _following(decision.facts, after, action)
    superseded = live.get(change.knob) != change.after
    if superseded or change.before is None:
        return Judgement(verdict, note, counted=True)  # never undo a person's change
    if verdict is State.WORSE:
        return Judgement(State.ROLLED_BACK, MADE_WORSE, counted=True)
    raised = change.after > change.before
    if verdict is State.UNCHANGED and raised and _still_needs_more(action, after):
        return Judgement(State.PARTIAL, f"{STILL_FAILING}; {note}", counted=True)
    if (
        verdict is State.UNCHANGED
        and policy.rollback_unhelpful
        and change.knob in COST_KNOBS
        and raised
    ):
        return Judgement(State.ROLLED_BACK, ONLY_COST, counted=True)
    return Judgement(verdict, note, counted=True)


def _dependency_failing(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    action: type[BaseAction] | None,
    policy: VerifyPolicy,
) -> bool:
    """True when a dependency began failing after a change that does not touch its calls.

    A memory or timeout change does not make a dependency fail: a window in which one
    does (its error rate rose by ``error_rate_increase`` or more) cannot tell whether the
    change helped or hurt, so it is not counted either way.
    """
    if action is None or action.knob not in CALL_NEUTRAL_KNOBS:
        return False
    now = fact_number(after, "dependency_error_rate")
    was = fact_number(before, "dependency_error_rate") or 0.0
    return now is not None and now >= was + policy.error_rate_increase


def _failing_otherwise(
    before: Mapping[str, Any], after: Mapping[str, Any], policy: VerifyPolicy
) -> bool:
    """True when the share of invocations that failed other than by timing out rose."""
    rates = []
    for facts in (before, after):
        errors = fact_number(facts, "error_rate")
        if errors is None:
            return False
        rates.append(errors - (fact_number(facts, "timeout_rate") or 0.0))
    return rates[1] > rates[0] + policy.error_rate_increase


def _failed_at(action: type[BaseAction] | None, after: Mapping[str, Any]) -> bool:
    """True when a window after the change counts what the change itself failed at."""
    if action is None or action.failure is None:
        return False
    return (extra_number(after, action.failure) or 0.0) > 0


def _following(
    before: Mapping[str, Any], after: Mapping[str, Any], action: type[BaseAction] | None
) -> str:
    """A note that timeouts followed a change made for another symptom (e.g. memory)."""
    if action is None or action.symptom == "timeout_rate":
        return ""
    was, now = fact_number(before, "timeout_rate") or 0.0, fact_number(after, "timeout_rate")
    return f"; {FOLLOWED_BY_TIMEOUTS}" if now is not None and now > was else ""


def _still_needs_more(action: type[BaseAction] | None, after: Mapping[str, Any]) -> bool:
    """True when a need that enough of the knob meets (memory, timeout) still shows its symptom."""
    if action is None or not action.monotone or not action.symptom:
        return False
    return (named_fact(after, action.symptom) or 0.0) > 0


def evidence(
    before: Mapping[str, Any], after: Mapping[str, Any], action: type[BaseAction] | None
) -> str:
    """A short account of what moved, e.g. ``oom_rate 0.45 -> 0; duration_p95_ms 320 -> 41``,
    after the action's own account of how the function runs now, where it has one."""
    names = [action.symptom] if action is not None and action.symptom else []
    names += [n for n in ("error_rate", "duration_p95_ms") if n not in names]
    names += [n for n in (action.must_not_rise if action else ()) if n not in names]
    own = action.account(after) if action is not None else ""
    parts = [own] if own else []
    for name in names:
        was, now = named_fact(before, name), named_fact(after, name)
        if was is not None or now is not None:
            parts.append(f"{name.removeprefix('extra.')} {_short(was)} -> {_short(now)}")
    return "; ".join(parts)


def _short(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2g}"
