"""What a person may do to the loop by hand: pause or resume tuning, approve, roll back.

:class:`ManualControl` is built in wiring beside the daemon and shares its parts: the
store, the applier, the providers, the lock and the notifier.  Each action is recorded in
the store as a decision like any other (kind ``manual``, or a rollback), so the audit log
says who did what and when.  Pausing is a piece of loop state the apply step reads
(:meth:`ManualControl.paused_by`); approving and rolling back run under the loop's lock,
one change at a time, through the same intent-first apply path as the loop's own changes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tuner.daemon.applying import Applier
from tuner.decisions.planning import function_group
from tuner.decisions.rollbacks import rollback_of
from tuner.domain.decisions import Decision, Kind
from tuner.domain.lifecycle import TRANSITIONS, State, Verdict
from tuner.domain.model import Change, FunctionRef, Mode, Severity, Target, new_id
from tuner.domain.naming import function_key
from tuner.domain.ports import DecisionStore, Provider, StateStore

MANUAL_RULE = "manual"
_PAUSED = "paused:"


class ManualError(ValueError):
    """A request a person made cannot be carried out (the message says why)."""


def paused(store: StateStore, key: str) -> dict[str, str] | None:
    """Who paused tuning of a function (by key) and why, or None when it is not paused."""
    raw = store.get_state(_PAUSED + key)
    if not raw:
        return None
    value = json.loads(raw)
    return value if isinstance(value, dict) else {"by": "?"}


class ControlStore(DecisionStore, StateStore, Protocol):
    """What manual control reads and writes: decisions and the loop's state (pauses)."""


@dataclass
class ManualControl:
    """Pause, resume, approve and roll back by hand, each audited, one at a time with the loop.

    It shares the daemon's store, applier (with its clock and retries), providers and lock.
    """

    store: ControlStore
    applier: Applier
    providers: Sequence[Provider]
    lock: threading.Lock
    notify: Callable[[list[Decision]], None]
    mode: Mode

    # ------------------------------------------------------------ pausing

    def paused_by(self, key: str) -> dict[str, str] | None:
        """Who paused tuning of a function and why, or None when it is not paused."""
        return paused(self.store, key)

    def function_key(self, name: str) -> str:
        """The key of a managed function, from its key or unique bare name.

        Raises :class:`~tuner.domain.naming.UnknownFunction` (with "did you mean") or
        :class:`~tuner.domain.naming.AmbiguousFunction`: nothing is recorded for them.
        """
        keys = [t.ref.key for p in self.providers for t in self.applier.retry(p.targets)]
        return function_key(name, keys)

    def pause(self, name: str, who: str, why: str = "") -> Decision:
        """Stop tuner from changing one function until it is resumed; audited."""
        key = self.function_key(name)
        now = self.applier.clock.now()
        self.store.put_state(_PAUSED + key, json.dumps({"by": who, "at": now, "why": why}))
        return self._audit(FunctionRef.parse(key), "pause", f"tuning paused by {who}", why)

    def resume(self, name: str, who: str, why: str = "") -> Decision:
        """Let tuner change a paused function again; audited."""
        key = self.function_key(name)
        if self.paused_by(key) is None:
            raise ManualError(f"{key} is not paused")
        self.store.delete_state(_PAUSED + key)
        return self._audit(FunctionRef.parse(key), "resume", f"tuning resumed by {who}", why)

    def _audit(self, ref: FunctionRef, action: str, summary: str, reason: str) -> Decision:
        decision = Decision(
            id=new_id(),
            time=self.applier.clock.now(),
            ref=ref,
            rule=MANUAL_RULE,
            action=action,
            severity=Severity.INFO,
            mode=self.mode,
            summary=summary,
            group=function_group(ref),
            kind=Kind.MANUAL,
        ).with_verdict(Verdict.OBSERVE, reason)
        self.store.record(decision)
        return decision

    # ------------------------------------------------------------ changing

    def approve(self, decision_id: str, who: str) -> Decision:
        """Apply a recommended change now, from the live value; the new decision says who approved."""
        with self.lock:
            decision = self._decision(decision_id)
            if decision.state is State.SUPERSEDED:
                raise ManualError(f"this recommendation is no longer live: {decision.why}")
            if decision.state is not State.RECOMMENDED or decision.change is None:
                raise ManualError("only a recommended change can be approved")
            provider, target = self._target(decision.ref)
            change = decision.change
            live = target.config.get(change.knob)
            if live == change.after:
                raise ManualError(f"{change.knob.value} is already {live}")
            approved = decision.replaced(
                id=new_id(),
                time=self.applier.clock.now(),
                mode=Mode.APPLY,
                state=State.PLANNED,
                verdict=None,
                hold=None,
                change=Change(change.knob, live, change.after),
                judged_windows=0,
                seen=1,
                last_seen=None,
            ).with_verdict(Verdict.APPLY, f"approved by {who} (recommendation {decision.id})")
            done, _ = self.applier.apply(provider, target, approved)
        self.notify([done])
        return done

    def roll_back(self, decision_id: str, who: str) -> Decision:
        """Put a changed knob back to its value before the change, now; audited as a rollback."""
        with self.lock:
            decision = self._decision(decision_id)
            change = decision.change
            live = State.ROLLED_BACK in TRANSITIONS[decision.state]
            if not live or change is None or change.before is None:
                raise ManualError(
                    "only an applied change with a known earlier value can be rolled back"
                )
            if decision.kind is Kind.ROLLBACK:
                raise ManualError("this decision is itself a rollback")
            provider, target = self._target(decision.ref)
            undo = rollback_of(
                decision,
                now=self.applier.clock.now(),
                live=target.config.get(change.knob),
                summary=f"rolled back {change.describe()} by hand",
                reason=f"by {who}",
            )
            done, _ = self.applier.apply(provider, target, undo)
            reversed_ = self.applier.rolled_back(done) if done.state is State.APPLIED else None
        self.notify([reversed_ or done])
        return done

    def _decision(self, decision_id: str) -> Decision:
        decision = self.store.get(decision_id)
        if decision is None:
            raise ManualError(f"no decision {decision_id}")
        return decision

    def _target(self, ref: FunctionRef) -> tuple[Provider, Target]:
        provider = next((p for p in self.providers if p.name == ref.provider), None)
        if provider is None:
            raise ManualError(f"no provider {ref.provider!r}")
        target = next((t for t in self.applier.retry(provider.targets) if t.ref == ref), None)
        if target is None:
            raise ManualError(f"{ref.key} is not managed by {ref.provider} any more")
        return provider, target
