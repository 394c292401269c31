"""The guard: modes, cooldown, hysteresis, caps and no-data, as a table."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tuner.guard import GuardPolicy, guard
from tuner.model import Change, Decision, FunctionRef, Knob, Mode, Outcome, Severity
from tuner.planning import effective_mode

NOW = 1_000_000.0
F = FunctionRef("aws", "resize", "eu-west-1")
G = FunctionRef("aws", "thumb", "eu-west-1")


def decision(
    ref: FunctionRef = F,
    before: float = 128,
    after: float = 256,
    knob: Knob = Knob.MEMORY_MB,
    **kw: Any,
) -> Decision:
    base = Decision(
        id=f"{ref.name}-{knob}-{after}", time=NOW, ref=ref, rule="oom", action="more-memory",
        severity=Severity.CRITICAL, mode=Mode.APPLY, outcome=Outcome.OBSERVED,
        facts={"invocations": 50.0}, change=Change(knob, before, after),
    )  # fmt: skip
    return replace(base, **kw)


def past(age_s: float, before: float = 128, after: float = 256, ref: FunctionRef = F) -> Decision:
    return decision(
        ref, before, after, time=NOW - age_s, outcome=Outcome.APPLIED, id=f"past-{age_s}-{ref.name}"
    )


COOLDOWN = {"oom": 600.0}


@pytest.mark.parametrize(
    ("planned", "history", "policy", "outcome", "reason"),
    [
        ([decision()], [], GuardPolicy(), Outcome.APPLIED, ""),
        ([decision()], [], GuardPolicy(mode=Mode.OBSERVE), Outcome.OBSERVED, ""),
        ([decision()], [], GuardPolicy(mode=Mode.RECOMMEND), Outcome.RECOMMENDED, ""),
        ([decision(mode=Mode.RECOMMEND)], [], GuardPolicy(), Outcome.RECOMMENDED, ""),
        ([decision(change=None)], [], GuardPolicy(), Outcome.NOTIFIED, ""),
        ([decision(facts={"invocations": 0.0})], [], GuardPolicy(), Outcome.SKIPPED, "no data"),
        ([decision(facts={"invocations": None})], [], GuardPolicy(), Outcome.SKIPPED, "no data"),
        ([decision(facts={})], [], GuardPolicy(), Outcome.SKIPPED, "no data"),
        (
            [decision(before=256, after=512)],
            [past(100)],
            GuardPolicy(),
            Outcome.SKIPPED,
            "cooldown",
        ),
        ([decision(before=256, after=512)], [past(700)], GuardPolicy(), Outcome.APPLIED, ""),
        (
            [decision(before=256, after=128)],
            [past(700)],
            GuardPolicy(),
            Outcome.SKIPPED,
            "hysteresis",
        ),
        (
            [decision(before=256, after=128)],
            [past(700)],
            GuardPolicy(hysteresis_s=600),
            Outcome.APPLIED,
            "",
        ),
        (
            [decision(knob=Knob.TIMEOUT_S, before=3, after=6)],
            [past(100)],
            GuardPolicy(),
            Outcome.APPLIED,
            "",
        ),
        ([decision(before=256, after=512)], [past(100, ref=G)], GuardPolicy(), Outcome.APPLIED, ""),
        (
            [decision(before=256, after=512)],
            [past(4000)],
            GuardPolicy(max_changes_per_function_per_day=1),
            Outcome.SKIPPED,
            "per function per day",
        ),
        (
            [decision(before=256, after=512)],
            [past(4000, ref=G)],
            GuardPolicy(max_changes_per_function_per_day=1),
            Outcome.APPLIED,
            "",
        ),
        (
            [decision(before=256, after=512)],
            [past(1000, ref=G)],
            GuardPolicy(max_changes_per_hour=1),
            Outcome.SKIPPED,
            "per hour",
        ),
        ([decision()], [], GuardPolicy(max_changes_per_cycle=0), Outcome.SKIPPED, "per cycle"),
    ],
)
def test_guard(
    planned: list[Decision],
    history: list[Decision],
    policy: GuardPolicy,
    outcome: Outcome,
    reason: str,
) -> None:
    [settled] = guard(planned, history, COOLDOWN, policy, NOW)
    assert settled.outcome is outcome
    assert reason in settled.reason


def test_caps_keep_the_most_severe_first() -> None:
    info = decision(G, severity=Severity.INFO, id="info")
    critical = decision(F, id="critical")
    settled = {
        d.id: d.outcome
        for d in guard([info, critical], [], COOLDOWN, GuardPolicy(max_changes_per_cycle=1), NOW)
    }
    assert settled == {"critical": Outcome.APPLIED, "info": Outcome.SKIPPED}


def test_one_knob_changes_once_per_cycle() -> None:
    a = decision(id="a")
    b = decision(after=384, id="b", rule="other")
    settled = [d.outcome for d in guard([a, b], [], COOLDOWN, GuardPolicy(), NOW)]
    assert settled == [Outcome.APPLIED, Outcome.SKIPPED]


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
