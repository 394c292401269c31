"""What a person may do to the loop by hand: pause or resume tuning, approve, roll back.

Each is recorded in the store as a decision like any other (rule ``manual``), so the audit
log says who did what and when.  Pausing is a piece of loop state the loop reads before it
applies a change (:func:`held`); approving and rolling back run under the loop's lock, one
change at a time, through the same intent-first apply path as the loop's own changes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

from tuner.decisions.planning import function_group
from tuner.domain.lifecycle import TRANSITIONS, State, Verdict
from tuner.domain.model import Change, Decision, FunctionRef, Mode, Severity, Target, new_id
from tuner.domain.ports import Provider, Store

if TYPE_CHECKING:
    from tuner.daemon.loop import Daemon

MANUAL_RULE = "manual"
_PAUSED = "paused:"


class ManualError(ValueError):
    """A request a person made cannot be carried out (the message says why)."""


def paused(store: Store, key: str) -> dict[str, str] | None:
    """Who paused tuning of a function and why, or None when it is not paused."""
    raw = store.get_state(_PAUSED + key)
    if not raw:
        return None
    value = json.loads(raw)
    return value if isinstance(value, dict) else {"by": "?"}


def held(store: Store, decision: Decision) -> Decision:
    """A planned change to a paused function becomes skipped; rollbacks are never held."""
    if decision.verdict is not Verdict.APPLY or decision.undoes:
        return decision
    who = paused(store, decision.ref.key)
    if who is None:
        return decision
    return decision.advance(
        State.SKIPPED, f"tuning of this function is paused by {who.get('by', 'a person')}"
    )


def _audit(daemon: Daemon, ref: FunctionRef, action: str, summary: str, reason: str) -> Decision:
    decision = Decision(
        id=new_id(),
        time=daemon.clock.now(),
        ref=ref,
        rule=MANUAL_RULE,
        action=action,
        severity=Severity.INFO,
        mode=daemon.mode,
        summary=summary,
        group=function_group(ref),
    ).with_verdict(Verdict.OBSERVE, reason)
    daemon.store.record(decision)
    return decision


def pause(daemon: Daemon, key: str, who: str, why: str = "") -> Decision:
    """Stop tuner from changing one function until it is resumed; audited."""
    ref = FunctionRef.parse(key)
    now = daemon.clock.now()
    daemon.store.put_state(_PAUSED + key, json.dumps({"by": who, "at": now, "why": why}))
    return _audit(daemon, ref, "pause", f"tuning paused by {who}", why)


def resume(daemon: Daemon, key: str, who: str, why: str = "") -> Decision:
    """Let tuner change a paused function again; audited."""
    if paused(daemon.store, key) is None:
        raise ManualError(f"{key} is not paused")
    daemon.store.delete_state(_PAUSED + key)
    return _audit(daemon, FunctionRef.parse(key), "resume", f"tuning resumed by {who}", why)


def _apply(daemon: Daemon, provider: Provider, target: Target, decision: Decision) -> Decision:
    """The loop's own apply path (intent first, optimistic concurrency, restore on failure)."""
    done, _ = daemon.applier.apply(provider, target, decision)
    return done


def _target(daemon: Daemon, ref: FunctionRef) -> tuple[Provider, Target]:
    provider = next((p for p in daemon.providers if p.name == ref.provider), None)
    if provider is None:
        raise ManualError(f"no provider {ref.provider!r}")
    target = next((t for t in daemon._retry(provider.targets) if t.ref == ref), None)
    if target is None:
        raise ManualError(f"{ref.key} is not managed by {ref.provider} any more")
    return provider, target


def approve(daemon: Daemon, decision_id: str, who: str) -> Decision:
    """Apply a recommended change now, from the live value; the new decision says who approved."""
    with daemon._lock:
        decision = daemon.store.get(decision_id)
        if decision is None:
            raise ManualError(f"no decision {decision_id}")
        if decision.state is not State.RECOMMENDED or decision.change is None:
            raise ManualError("only a recommended change can be approved")
        provider, target = _target(daemon, decision.ref)
        change = decision.change
        live = target.config.get(change.knob)
        if live == change.after:
            raise ManualError(f"{change.knob.value} is already {live}")
        approved = replace(
            decision,
            id=new_id(),
            time=daemon.clock.now(),
            mode=Mode.APPLY,
            state=State.PLANNED,
            verdict=None,
            change=Change(change.knob, live, change.after),
            judged_windows=0,
        ).with_verdict(Verdict.APPLY, f"approved by {who} (recommendation {decision.id})")
        done = _apply(daemon, provider, target, approved)
    daemon._notify([done])
    return done


def roll_back(daemon: Daemon, decision_id: str, who: str) -> Decision:
    """Put a changed knob back to its value before the change, now; audited as a rollback."""
    with daemon._lock:
        decision = daemon.store.get(decision_id)
        if decision is None:
            raise ManualError(f"no decision {decision_id}")
        change = decision.change
        live = State.ROLLED_BACK in TRANSITIONS[decision.state]
        if not live or change is None or change.before is None:
            raise ManualError(
                "only an applied change with a known earlier value can be rolled back"
            )
        if decision.undoes:
            raise ManualError("this decision is itself a rollback")
        provider, target = _target(daemon, decision.ref)
        undo = replace(
            decision,
            id=new_id(),
            time=daemon.clock.now(),
            action="rollback",
            change=Change(change.knob, target.config.get(change.knob), change.before),
            summary=f"rolled back {change.describe()} by hand",
            state=State.PLANNED,
            verdict=None,
            judged_windows=0,
            undoes=decision.id,
        ).with_verdict(Verdict.APPLY, f"by {who}")
        done = _apply(daemon, provider, target, undo)
        reversed_ = daemon.applier.rolled_back(done) if done.state is State.APPLIED else None
    daemon._notify([reversed_ or done])
    return done
