"""Applying changes: intents written first, optimistic concurrency, restore, and reconcile.

Every change is written down (an intent, the decision ``applying``) before the provider
is called, and settled after (``applied``, ``failed`` or ``superseded``), so a crash
never leaves a function half-changed without a record; :meth:`Applier.reconcile` settles
what a crash left open from the live configuration, and never re-applies.

After a conflict the function is re-read and the change re-planned from the fresh
configuration: a knob is never moved against the direction the decision intended, and a
change that someone else already made (or went beyond) is superseded, not undone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Protocol

import structlog

from tuner.daemon.retrying import Retrier
from tuner.decisions.rollbacks import rollback_of
from tuner.domain.decisions import Decision, Intent, Kind
from tuner.domain.errors import ApplyFailedError, ConflictError, ProviderError, ThrottledError
from tuner.domain.lifecycle import INTENT_STATES, TRANSITIONS, IntentState, State, Verdict
from tuner.domain.model import Change, FactValue, Target, new_id
from tuner.domain.ports import Clock, DecisionStore, IntentStore, Promoting, Provider

log = structlog.get_logger(__name__)

RESTORING = "restoring the configuration after a failed update"
Replan = Callable[[Decision, Target], Change | None]
"""Re-plans a decision's change from a freshly read target; None: nothing left to do."""


class ApplyStore(DecisionStore, IntentStore, Protocol):
    """What applying reads and writes: decisions and the intents of their changes."""


class Applier:
    """Carries decisions with an ``apply`` verdict through to the provider, and back out.

    The only part that settles a change's decision once its intent is written: applied,
    failed, superseded, judged, rolled back.
    """

    def __init__(self, store: ApplyStore, clock: Clock, retry: Retrier, replan: Replan):
        self.store = store
        self.clock = clock
        self.retry = retry
        self.replan = replan
        self.throttled: set[str] = set()
        """Providers that kept throttling in this cycle: no more changes for them until the next."""

    def apply(
        self, provider: Provider, target: Target, decision: Decision
    ) -> tuple[Decision, Target]:
        """Apply a decision the guard let go ahead; return it settled, with the target as now live."""
        change = decision.change
        assert change is not None and decision.verdict is Verdict.APPLY
        decision = decision.advance(State.APPLYING)
        intent = Intent(new_id(), decision.id, decision.ref, (change,), self.clock.now())
        refused = self._begin(intent, decision)
        if refused:
            return self._settle(intent, decision, State.FAILED, refused, refused=True), target
        purpose = decision.summary or f"rule {decision.rule}"
        for _ in range(self.retry.attempts):
            try:
                config = self.retry(partial(provider.apply, target, [change], reason=purpose))
            except ConflictError as exc:
                log.warning("conflict, re-reading", function=decision.ref.key, error=str(exc))
                try:
                    live = self.retry(partial(provider.read, decision.ref))
                except ProviderError as read_exc:
                    return self._settle(
                        intent, decision, State.FAILED, f"re-read failed: {read_exc}"
                    ), target
                target = replace(target, config=live)
                value = live.get(change.knob)
                if value == change.after:
                    break  # someone (or an earlier attempt) already made it live
                fresh = self.replan(decision, target)
                if fresh is None:
                    why = (
                        f"{change.knob.value} was changed to {value} outside tuner meanwhile: "
                        "left as it is"
                    )
                    return self._settle(intent, decision, State.SUPERSEDED, why), target
                change = fresh
                decision = replace(decision, change=change)
                intent = replace(intent, changes=(change,))
                refused = self._begin(intent, decision)
                if refused:
                    return self._settle(
                        intent, decision, State.FAILED, refused, refused=True
                    ), target
                continue
            except ThrottledError as exc:
                self.throttled.add(provider.name)
                why = f"the provider is throttling: {exc}"
                return self._settle(intent, decision, State.FAILED, why), target
            except ApplyFailedError as exc:
                target, restored = self._restore(provider, target, change)
                why = f"the provider could not apply it: {exc}; {restored}"
                return self._settle(intent, decision, State.FAILED, why), target
            except Exception as exc:  # noqa: BLE001 - recorded, never half-done silently
                return self._settle(intent, decision, State.FAILED, str(exc)), target
            target = replace(target, config=config)
            break
        else:
            why = "conflicts persisted after re-reading"
            return self._settle(intent, decision, State.FAILED, why), target
        done = self._settle(intent, decision, State.APPLIED)
        log.info("applied", function=decision.ref.key, change=change.describe(), rule=decision.rule)
        return done, target

    def _begin(self, intent: Intent, decision: Decision) -> str:
        """Write the intent down before the provider is called; why not, when it could not be."""
        try:
            self.store.begin_intent(intent, decision)
        except Exception as exc:  # noqa: BLE001 - nothing is changed without a record
            log.error("intent not recorded", function=decision.ref.key, error=str(exc))
            return f"not applied: the intent could not be recorded ({exc})"
        return ""

    def _settle(
        self,
        intent: Intent,
        decision: Decision,
        state: State,
        reason: str = "",
        *,
        refused: bool = False,
    ) -> Decision:
        """The decision settled and its intent finished at once (``refused``: never begun)."""
        settled = decision.advance(state, reason)
        done = IntentState.ABANDONED if refused else INTENT_STATES.get(state, IntentState.ABANDONED)
        self.store.finish_intent(intent.id, done, settled)
        if state is State.FAILED:
            log.error("apply failed", function=decision.ref.key, reason=reason)
        return settled

    def _restore(self, provider: Provider, target: Target, change: Change) -> tuple[Target, str]:
        """After a failed update, put back the value tuner moved, if the knob still holds tuner's."""
        try:
            live = self.retry(lambda: provider.read(target.ref))
            target = replace(target, config=live)
            value = live.get(change.knob)
            if change.before is None or value == change.before:
                return target, f"{change.knob.value} is unchanged"
            if value != change.after:
                return (
                    target,
                    f"{change.knob.value} was changed to {value} outside tuner: left as it is",
                )
            undo = Change(change.knob, value, change.before)
            restored = self.retry(partial(provider.apply, target, [undo], reason=RESTORING))
            target = replace(target, config=restored)
        except Exception as exc:  # noqa: BLE001 - reported in the failed decision
            log.error("restore failed", function=target.ref.key, error=str(exc))
            return target, f"restoring {change.knob.value} failed: {exc}"
        log.warning("restored", function=target.ref.key, change=undo.describe())
        return target, f"restored {undo.describe()}"

    # ------------------------------------------------------------ rolling back

    def rollback(
        self,
        decision: Decision,
        why: str,
        facts: Mapping[str, FactValue],
        provider: Provider,
        target: Target,
    ) -> Decision:
        """Undo an applied change; on success the change is marked rolled back."""
        assert decision.change is not None
        undo = rollback_of(
            decision,
            now=self.clock.now(),
            live=decision.change.after,
            summary=f"rolled back {decision.change.describe()}: {why}",
            reason=why,
            facts=facts,
        )
        done, _ = self.apply(provider, target, undo)
        if done.state is State.APPLIED:
            self.rolled_back(done)
        return done

    def rolled_back(self, undo: Decision) -> Decision | None:
        """Mark the change a live rollback reverses as rolled back; return it."""
        original = self.store.get(undo.undoes)
        if original is None or State.ROLLED_BACK not in TRANSITIONS[original.state]:
            return None
        reversed_ = original.advance(State.ROLLED_BACK, f"rolled back: {undo.reason}")
        self.store.record(reversed_)
        return reversed_

    # ------------------------------------------------------------ judged to stay

    def judged(
        self, decision: Decision, state: State, reason: str, provider: Provider | None
    ) -> Decision:
        """The change advanced to the state later windows judged; a trial is promoted first.

        A provider that tries changes on a share of traffic (:class:`Promoting`) makes a
        change that stays final for all traffic before it is recorded as judged; when that
        fails, the change is returned still applied, to be judged again with the next window.
        ``provider`` is None for a function its provider no longer lists.
        """
        if state is not State.WORSE and isinstance(provider, Promoting):
            try:
                note = self.retry(partial(provider.promote, decision.ref, decision))
            except Exception as exc:  # noqa: BLE001 - judged again next window
                log.error("promotion failed", function=decision.ref.key, error=str(exc))
                return decision
            reason = f"{reason}; {note}" if reason and note else reason or note
        return decision.advance(state, reason)

    # ------------------------------------------------------------ after a crash

    def reconcile(self, providers: Mapping[str, Provider]) -> list[Decision]:
        """Settle intents left open by a crash, from the live configuration; never re-applies."""
        settled = []
        for intent in self.store.open_intents():
            decision = self.store.get(intent.decision_id)
            provider = providers.get(intent.ref.provider)
            if decision is None or provider is None:
                continue
            try:
                live = provider.read(intent.ref)
            except Exception as exc:  # noqa: BLE001 - tried again at the next cycle
                log.error("reconcile failed", function=intent.ref.key, error=str(exc))
                continue
            if all(live.get(c.knob) == c.after for c in intent.changes):
                # a rollback keeps its reason: it says why the change it reverses was undone
                why = (
                    ""
                    if decision.kind is Kind.ROLLBACK
                    else "completed after a restart: the change was live"
                )
                final = self._settle(intent, decision, State.APPLIED, why)
                reversed_ = self.rolled_back(final) if final.kind is Kind.ROLLBACK else None
                if reversed_ is not None:
                    settled.append(reversed_)
                    continue
            else:
                why = "interrupted before the change went live"
                tidied = self._abandon(provider, intent)
                why = f"{why}; {tidied}" if tidied else why
                final = self._settle(intent, decision, State.FAILED, why)
            log.warning("reconciled", function=intent.ref.key, state=final.state.value)
            settled.append(final)
        for undo in self.store.unsettled_rollbacks():  # a crash after the rollback went live
            reversed_ = self.rolled_back(undo)
            if reversed_ is not None:
                settled.append(reversed_)
                log.warning("reconciled", function=undo.ref.key, state=State.ROLLED_BACK.value)
        return settled

    @staticmethod
    def _abandon(provider: Provider, intent: Intent) -> str:
        """Let a provider that stages changes put back what the crash left half-done."""
        if not isinstance(provider, Promoting):
            return ""
        try:
            return provider.abandon(intent.ref, intent.changes)
        except Exception as exc:  # noqa: BLE001 - recorded in the failed decision
            log.error("tidying after a crash failed", function=intent.ref.key, error=str(exc))
            return f"putting back what it left failed: {exc}"
