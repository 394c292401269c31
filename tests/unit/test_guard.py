"""The guard: modes, cooldown, hysteresis, caps and no-data, as a table."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tuner.decisions.guard import Budget, GuardPolicy, guard
from tuner.decisions.planning import effective_mode
from tuner.domain.decisions import Decision
from tuner.domain.holds import HoldKind
from tuner.domain.lifecycle import State, Verdict
from tuner.domain.model import Change, FunctionRef, Knob, Mode, Severity

NOW = 1_000_000.0
F = FunctionRef("aws", "resize", "eu-west-1")
G = FunctionRef("aws", "thumb", "eu-west-1")
H = FunctionRef("aws", "ingest", "eu-west-1")


def decision(
    ref: FunctionRef = F,
    before: float = 128,
    after: float = 256,
    knob: Knob = Knob.MEMORY_MB,
    **kw: Any,
) -> Decision:
    base = Decision(
        id=f"{ref.name}-{knob}-{after}",
        time=NOW,
        ref=ref,
        rule="oom",
        action="more-memory",
        severity=Severity.CRITICAL,
        mode=Mode.APPLY,
        facts={"invocations": 50.0},
        change=Change(knob, before, after),
    )
    return replace(base, **kw)


def past(age_s: float, before: float = 128, after: float = 256, ref: FunctionRef = F) -> Decision:
    return decision(
        ref, before, after, time=NOW - age_s, state=State.APPLIED, id=f"past-{age_s}-{ref.name}"
    )


COOLDOWN = {"oom": 600.0}


@pytest.mark.parametrize(
    ("planned", "history", "policy", "verdict", "reason"),
    [
        ([decision()], [], GuardPolicy(), Verdict.APPLY, ""),
        ([decision(mode=Mode.OBSERVE)], [], GuardPolicy(), Verdict.OBSERVE, ""),
        ([decision(mode=Mode.RECOMMEND)], [], GuardPolicy(), Verdict.RECOMMEND, ""),
        ([decision(change=None)], [], GuardPolicy(), Verdict.NOTIFY, ""),
        ([decision(facts={"invocations": 0.0})], [], GuardPolicy(), Verdict.SKIP, "no data"),
        ([decision(facts={"invocations": None})], [], GuardPolicy(), Verdict.SKIP, "no data"),
        ([decision(facts={})], [], GuardPolicy(), Verdict.SKIP, "no data"),
        (
            [decision(before=256, after=512)],
            [past(100)],
            GuardPolicy(),
            Verdict.SKIP,
            "cooldown",
        ),
        ([decision(before=256, after=512)], [past(700)], GuardPolicy(), Verdict.APPLY, ""),
        (
            [decision(before=256, after=128)],
            [past(700)],
            GuardPolicy(),
            Verdict.SKIP,
            "hysteresis",
        ),
        (
            [decision(before=256, after=128)],
            [past(700)],
            GuardPolicy(hysteresis_s=600),
            Verdict.APPLY,
            "",
        ),
        (
            [decision(knob=Knob.TIMEOUT_S, before=3, after=6)],
            [past(100)],
            GuardPolicy(),
            Verdict.APPLY,
            "",
        ),
        ([decision(before=256, after=512)], [past(100, ref=G)], GuardPolicy(), Verdict.APPLY, ""),
        (
            [decision(before=256, after=512)],
            [past(4000)],
            GuardPolicy(max_changes_per_function_per_day=1),
            Verdict.SKIP,
            "per function per day",
        ),
        (
            [decision(before=256, after=512)],
            [past(4000, ref=G)],
            GuardPolicy(max_changes_per_function_per_day=1),
            Verdict.APPLY,
            "",
        ),
        (
            [decision(before=256, after=512)],
            [past(1000, ref=G)],
            GuardPolicy(max_changes_per_hour=1),
            Verdict.SKIP,
            "per hour",
        ),
        ([decision()], [], GuardPolicy(max_changes_per_cycle=0), Verdict.SKIP, "per cycle"),
    ],
)
def test_guard(
    planned: list[Decision],
    history: list[Decision],
    policy: GuardPolicy,
    verdict: Verdict,
    reason: str,
) -> None:
    [settled] = guard(planned, Budget.start(history, COOLDOWN, policy, NOW))
    assert settled.verdict is verdict
    assert (settled.hold is not None) is (verdict is Verdict.SKIP)  # a skip says what held it
    assert reason in settled.why


def test_caps_keep_the_most_severe_first() -> None:
    info = decision(G, severity=Severity.INFO, id="info")
    critical = decision(F, id="critical")
    settled = {
        d.id: d.verdict
        for d in guard(
            [info, critical], Budget.start([], COOLDOWN, GuardPolicy(max_changes_per_cycle=1), NOW)
        )
    }
    assert settled == {"critical": Verdict.APPLY, "info": Verdict.SKIP}


def test_of_one_severity_the_caps_fix_the_function_failing_most_first() -> None:
    quiet = decision(F, id="quiet", facts={"invocations": 50.0, "errors": 3.0})
    failing = decision(G, id="failing", facts={"invocations": 900.0, "errors": 700.0})
    middling = decision(H, id="middling", facts={"invocations": 90.0, "errors": 40.0})
    policy = GuardPolicy(max_changes_per_cycle=2)
    settled = {
        d.id: d.verdict
        for d in guard([quiet, middling, failing], Budget.start([], COOLDOWN, policy, NOW))
    }
    assert settled == {"failing": Verdict.APPLY, "middling": Verdict.APPLY, "quiet": Verdict.SKIP}


def test_one_knob_changes_once_per_cycle() -> None:
    a = decision(id="a")
    b = decision(after=384, id="b", rule="other")
    settled = [d.verdict for d in guard([a, b], Budget.start([], COOLDOWN, GuardPolicy(), NOW))]
    assert settled == [Verdict.APPLY, Verdict.SKIP]


@pytest.mark.parametrize(
    ("global_mode", "rule_mode", "effective"),
    [
        (Mode.APPLY, None, Mode.APPLY),
        (Mode.APPLY, Mode.RECOMMEND, Mode.RECOMMEND),
        (Mode.OBSERVE, Mode.APPLY, Mode.OBSERVE),  # a rule can never escalate
        (Mode.RECOMMEND, Mode.OBSERVE, Mode.OBSERVE),
    ],
)
def test_effective_mode(global_mode: Mode, rule_mode: Mode | None, effective: Mode) -> None:
    assert effective_mode(global_mode, rule_mode) is effective


@pytest.mark.parametrize(
    ("history", "policy", "says"),
    [
        (
            [past(100)],
            GuardPolicy(),
            "cooldown: memory_mb changed at 1970-01-12T13:45:00Z, not again before 1970-01-12T13:55:00Z",
        ),
        (
            [past(700, before=512, after=256)],
            GuardPolicy(),
            "hysteresis: memory_mb moved the other way at 1970-01-12T13:35:00Z",
        ),
        (
            [past(700, ref=G)],
            GuardPolicy(max_changes_per_hour=1),
            "cap: the fleet's changes are used up (at most 20 per cycle and 1 per hour)",
        ),
    ],
)
def test_a_change_held_back_says_the_same_in_every_cycle_until_it_may_go(
    history: list[Decision], policy: GuardPolicy, says: str
) -> None:
    """Times, not ages: the same decision in the next cycles is one record (tuner.decisions.repeats)."""
    reasons = {
        guard(
            [decision(before=256, after=512)], Budget.start(history, COOLDOWN, policy, NOW + later)
        )[0].why
        for later in (0.0, 60.0, 120.0)
    }
    assert len(reasons) == 1 and reasons.pop().startswith(says)


def test_a_lowering_that_was_rolled_back_is_not_made_again_by_its_rule() -> None:
    # cheapest-size lowered 2816 -> 1309 MB, the verifier called it worse and rolled it
    # back; once the hysteresis ended, the same facts planned the same lowering.
    lowered = decision(
        before=2816,
        after=1309,
        rule="cheapest-size",
        action="cheapest-memory",
        time=NOW - 7 * 3600,
        state=State.ROLLED_BACK,
        id="lowered",
    )
    rollback = decision(
        before=1309,
        after=2816,
        rule="cheapest-size",
        action="rollback",
        time=NOW - 7 * 3600 + 900,
        state=State.APPLIED,
        id="rollback",
    )
    again = decision(before=2816, after=1309, rule="cheapest-size", action="cheapest-memory")
    policy = GuardPolicy()
    [held] = guard([again], Budget.start([lowered, rollback], COOLDOWN, policy, NOW))
    assert held.verdict is Verdict.SKIP and held.hold is not None
    assert held.hold.kind is HoldKind.UNDONE and held.hold.until == lowered.time + policy.undone_s
    assert "lowering memory_mb at" in held.why and "was rolled back" in held.why
    # Another rule may lower it, and the rule may raise it; after `undone`, it may lower again.
    other = replace(again, rule="right-size", action="less-memory")
    raise_ = decision(before=2816, after=4224, rule="cheapest-size", action="cheapest-memory")
    later = Budget.start([lowered, rollback], COOLDOWN, policy, lowered.time + policy.undone_s)
    verdicts = [
        *guard([other], Budget.start([lowered, rollback], COOLDOWN, policy, NOW)),
        *guard([raise_], Budget.start([lowered, rollback], COOLDOWN, policy, NOW)),
        *guard([replace(again, time=later.now)], later),
    ]
    assert [d.verdict for d in verdicts] == [Verdict.APPLY] * 3
