"""The decision lifecycle: every legal transition is allowed, every other one refused."""

from __future__ import annotations

import itertools

import pytest

from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import (
    LIVE,
    TRANSITIONS,
    UNTOLD,
    VERDICT_STATES,
    IllegalTransition,
    State,
    Verdict,
    check,
    is_final,
)
from tuner.domain.model import FunctionRef, Mode, Severity


def decision(state: State = State.PLANNED) -> Decision:
    return Decision(
        "d",
        0.0,
        FunctionRef("fake", "f"),
        "oom",
        "more-memory",
        Severity.CRITICAL,
        Mode.APPLY,
        state,
    )


LEGAL = [(a, b) for a, targets in TRANSITIONS.items() for b in targets]
ILLEGAL = [(a, b) for a, b in itertools.product(State, State) if (a, b) not in LEGAL]


def test_every_state_has_a_row_and_every_state_is_reachable_from_planned() -> None:
    assert set(TRANSITIONS) == set(State)
    seen, frontier = {State.PLANNED}, [State.PLANNED]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(State)


@pytest.mark.parametrize(("current", "new"), LEGAL)
def test_each_legal_transition_is_taken(current: State, new: State) -> None:
    moved = decision(current).advance(new, "why")
    assert (moved.state, moved.why) == (new, "why")


@pytest.mark.parametrize(("current", "new"), ILLEGAL)
def test_each_other_transition_is_refused(current: State, new: State) -> None:
    with pytest.raises(IllegalTransition, match=f"{current.value} -> {new.value}"):
        check(current, new)


@pytest.mark.parametrize("verdict", list(Verdict))
def test_a_verdict_is_given_once_to_a_planned_decision(verdict: Verdict) -> None:
    judged = decision().with_verdict(verdict, "held")
    assert judged.verdict is verdict and judged.state is VERDICT_STATES[verdict]
    if judged.state is not State.PLANNED:
        with pytest.raises(IllegalTransition):
            judged.with_verdict(Verdict.APPLY)


def test_an_apply_verdict_changes_nothing_until_the_intent_is_written() -> None:
    allowed = decision().with_verdict(Verdict.APPLY)
    assert allowed.state is State.PLANNED and not allowed.applied
    assert allowed.advance(State.APPLYING).state is State.APPLYING
    assert allowed.advance(State.SKIPPED).state is State.SKIPPED  # a throttling provider


def test_final_live_and_untold_states_agree_with_the_table() -> None:
    finals = {s for s in State if is_final(s)}
    assert State.ROLLED_BACK in finals and State.APPLIED not in finals
    assert not finals & {State.PLANNED, State.APPLYING}
    assert State.APPLYING in LIVE and State.SKIPPED not in LIVE
    assert UNTOLD.isdisjoint({State.APPLIED, State.FAILED, State.ROLLED_BACK, State.RECOMMENDED})
    assert decision(State.ROLLED_BACK).applied and not decision(State.FAILED).applied
