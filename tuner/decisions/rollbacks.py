"""Rollbacks: the one way a decision that undoes another is made, by tuner or by a person."""

from __future__ import annotations

from collections.abc import Mapping

from tuner.domain.decisions import Decision, Kind
from tuner.domain.lifecycle import State, Verdict
from tuner.domain.model import Change, FactValue, new_id

ROLLBACK_ACTION = "rollback"


def rollback_of(
    decision: Decision,
    *,
    now: float,
    live: float | int | None,
    summary: str,
    reason: str,
    facts: Mapping[str, FactValue] | None = None,
) -> Decision:
    """A decision, let go ahead, that puts the knob ``decision`` changed back where it was.

    ``live`` is the knob's value now (the rollback's ``before``); ``facts`` what the
    rollback rests on (the window that judged the change), else the change's own.
    """
    change = decision.change
    if change is None or change.before is None:
        raise ValueError("only a change from a known value can be rolled back")
    return decision.replaced(
        id=new_id(),
        time=now,
        action=ROLLBACK_ACTION,
        kind=Kind.ROLLBACK,
        state=State.PLANNED,
        verdict=None,
        hold=None,
        change=Change(change.knob, live, change.before),
        facts=dict(facts) if facts is not None else decision.facts,
        summary=summary,
        reason=reason,
        judged_windows=0,
        undoes=decision.id,
        seen=1,
        last_seen=None,
    ).with_verdict(Verdict.APPLY, reason)
