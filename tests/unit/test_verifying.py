"""Verification as one pure function: every window, verdict and rollback rule, as a table."""

from __future__ import annotations

from typing import Any

import pytest

from tuner.decisions.verifying import (
    FOLLOWED_BY_TIMEOUTS,
    MADE_WORSE,
    ONLY_COST,
    STILL_FAILING,
    TOO_QUIET,
    VerifyPolicy,
    judge,
)
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.model import Change, FunctionConfig, FunctionRef, Knob, Mode, Severity
from tuner.engine.conditions import compile_condition
from tuner.engine.reference import FACT_TYPES

T = 1_000.0
POLICY = VerifyPolicy(windows=3)
OOM_BEFORE = {
    "invocations": 100.0,
    "ooms": 40.0,
    "oom_rate": 0.4,
    "error_rate": 0.4,
    "duration_p95_ms": 100.0,
}
OOM_RULE = compile_condition("ooms > 0.0", FACT_TYPES)


def change(
    action: str = "more-memory",
    knob: Knob = Knob.MEMORY_MB,
    before: float | None = 256,
    after: float = 512,
    judged: int = 0,
    facts: dict[str, Any] | None = None,
) -> Decision:
    return Decision(
        "c",
        T,
        FunctionRef("fake", "f"),
        "oom",
        action,
        Severity.CRITICAL,
        Mode.APPLY,
        State.APPLIED,
        facts=facts or OOM_BEFORE,
        change=Change(knob, before, after),
        judged_windows=judged,
    )


def after(**facts: float) -> dict[str, Any]:
    base = {
        "invocations": 100.0,
        "ooms": 0.0,
        "oom_rate": 0.0,
        "error_rate": 0.0,
        "duration_p95_ms": 100.0,
    }
    return {**base, **facts}


LIVE = FunctionConfig(memory_mb=512, timeout_s=10.0)
TIMEOUT_BEFORE = {
    "invocations": 100.0,
    "timeout_rate": 0.2,
    "error_rate": 0.2,
    "duration_p95_ms": 100.0,
}
FANNED_LIVE = FunctionConfig(memory_mb=512, timeout_s=10.0, fan_out=2)


def fanned(
    before: float | None = 1, judged: int = 0, facts: dict[str, Any] | None = None
) -> Decision:
    """Fan-out 1 -> 2 for timeouts: a change that no failing setting before it calls for."""
    return change("fan-out", Knob.FAN_OUT, before, 2, judged, facts or TIMEOUT_BEFORE)


START = T + 60  # a window that began a minute after the change (past the 10 s timeout)


@pytest.mark.parametrize(
    ("decision", "window", "start", "live", "state", "reason", "counted"),
    [
        # a window that began before the change never counts
        (change(), after(), T - 1, LIVE, None, "", False),
        # the problem went away
        (change(), after(), START, LIVE, State.IMPROVED, "oom_rate 0.4 -> 0", True),
        # a memory fix after which the invocations that now run on time out: the OOMs
        # went away, the timeouts are a new symptom, and 256 MB is known to fail
        (
            change(),
            after(error_rate=0.9, timeout_rate=0.9, duration_p95_ms=10_000.0),
            START,
            LIVE,
            State.IMPROVED,
            FOLLOWED_BY_TIMEOUTS,
            True,
        ),
        # ...but a memory fix after which invocations fail more often otherwise: worse
        (
            change(),
            after(error_rate=0.9),
            START,
            LIVE,
            State.ROLLED_BACK,
            MADE_WORSE,
            True,
        ),
        # a change made without a failing setting before it: errors rose, rolled back
        (
            fanned(),
            after(error_rate=0.9),
            START,
            FANNED_LIVE,
            State.ROLLED_BACK,
            MADE_WORSE,
            True,
        ),
        # slower without fewer errors: worse
        (
            fanned(facts={**TIMEOUT_BEFORE, "error_rate": 0.0}),
            after(duration_p95_ms=200.0),
            START,
            FANNED_LIVE,
            State.ROLLED_BACK,
            MADE_WORSE,
            True,
        ),
        # a person moved the knob since: judged, never undone
        (
            fanned(),
            after(error_rate=0.9),
            START,
            FunctionConfig(memory_mb=512, timeout_s=10.0, fan_out=8),
            State.WORSE,
            "",
            True,
        ),
        # the symptom fell but the rule still holds: partial, the next step is due
        (
            change(),
            after(ooms=10.0, oom_rate=0.1, error_rate=0.1),
            START,
            LIVE,
            State.PARTIAL,
            "oom_rate 0.4 -> 0.1",
            True,
        ),
        # nothing changed yet: wait for the policy's windows
        (change(), after(ooms=40.0, oom_rate=0.4, error_rate=0.4), START, LIVE, None, "", True),
        # still failing at the new size after the windows: kept, never back to a failing size
        (
            change(judged=2),
            after(ooms=40.0, oom_rate=0.4, error_rate=0.4),
            START,
            LIVE,
            State.PARTIAL,
            STILL_FAILING,
            True,
        ),
        # a longer timeout that did not help: 10 s is known to be too short, kept, the
        # next step follows
        (
            change(
                "longer-timeout",
                Knob.TIMEOUT_S,
                10.0,
                20.0,
                judged=2,
                facts=TIMEOUT_BEFORE,
            ),
            TIMEOUT_BEFORE,
            START + 60,
            FunctionConfig(memory_mb=512, timeout_s=20.0),
            State.PARTIAL,
            STILL_FAILING,
            True,
        ),
        # more fan-out that did not help costs more: given back after the windows
        (fanned(judged=2), TIMEOUT_BEFORE, START, FANNED_LIVE, State.ROLLED_BACK, ONLY_COST, True),
        # invocations in flight at the change: cannot show that nothing changed
        (change(), after(ooms=40.0, oom_rate=0.4, error_rate=0.4), T + 5, LIVE, None, "", False),
        # ...but can show that it helped
        (change(), after(), T + 5, LIVE, State.IMPROVED, "", True),
        # too quiet to judge: wait, and after 3 x windows keep it
        (change(), after(invocations=1.0), START, LIVE, None, "", True),
        (change(judged=8), after(invocations=1.0), START, LIVE, State.UNCHANGED, TOO_QUIET, True),
        # a change from an unknown value cannot be rolled back: judged only
        (fanned(before=None), after(error_rate=0.9), START, FANNED_LIVE, State.WORSE, "", True),
    ],
)
def test_judge(
    decision: Decision,
    window: dict[str, Any],
    start: float,
    live: FunctionConfig,
    state: State | None,
    reason: str,
    counted: bool,
) -> None:
    judgement = judge(decision, window, start, live, OOM_RULE, POLICY)
    assert (judgement.state, judgement.counted) == (state, counted)
    assert reason in judgement.reason
    assert judgement.rollback is (state is State.ROLLED_BACK)


def test_a_dependency_that_began_failing_does_not_roll_back_a_memory_change() -> None:
    # Right-sized, then the dependency went down: the errors are the dependency's.
    before = {**after(), "dependency_error_rate": 0.0}
    resized = change("less-memory", before=1856, after=975, facts=before)
    outage = after(error_rate=0.8, dependency_error_rate=0.9)
    live = FunctionConfig(memory_mb=975, timeout_s=10.0)
    judged = judge(resized, outage, START, live, None, POLICY)
    assert judged.state is None and judged.counted
    # The same errors without a failing dependency are the change's: rolled back.
    worse = judge(resized, after(error_rate=0.8), START, live, None, POLICY)
    assert worse.rollback and worse.reason == MADE_WORSE
    # More fan-out makes more calls: a dependency failing after it may be its doing.
    fanned = change("fan-out", knob=Knob.FAN_OUT, before=1, after=2, facts=before)
    fanned_live = FunctionConfig(memory_mb=512, timeout_s=10.0, fan_out=2)
    assert judge(fanned, outage, START, fanned_live, None, POLICY).rollback
