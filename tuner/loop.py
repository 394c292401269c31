"""The control loop: observe, evaluate, plan, guard, apply, verify, record and notify.

:class:`Daemon` runs one cycle at a time (``run_cycle``); :func:`run_forever` schedules
cycles with APScheduler and stops gracefully on SIGTERM/SIGINT, finishing the cycle
under way.  One failing provider or function never stops the cycle for the rest.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from tuner.engine import RuleBase, Streaks, build_facts, evaluate, fleet_facts
from tuner.errors import ApplyFailedError, ConflictError, ProviderError, ThrottledError
from tuner.guard import DAY_S, HOUR_S, GuardPolicy, guard
from tuner.insight import CycleObserver
from tuner.manual import held
from tuner.model import (
    Change,
    Decision,
    FunctionRef,
    Intent,
    Knob,
    Mode,
    Outcome,
    Severity,
    Target,
    Verification,
    WindowFacts,
)
from tuner.planning import plan_finding
from tuner.ports import Clock, Notifier, Provider, Store
from tuner.verifying import VerifyPolicy, evidence, verify

log = structlog.get_logger(__name__)

_STREAKS_KEY = "streaks"
_COST_KNOBS = {Knob.MEMORY_MB, Knob.TIMEOUT_S, Knob.FAN_OUT}
_SILENT = {Outcome.OBSERVED, Outcome.SKIPPED, Outcome.APPLYING}
_THROTTLED = "the provider is throttling changes: tried again next cycle"
_RESTORING = "restoring the configuration after a failed update"
_GONE = "the function no longer exists: not judged"
_TOO_QUIET = "not enough traffic to judge the change: kept, not rolled back"


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        """POSIX seconds."""
        return time.time()


@dataclass
class CycleReport:
    """What one cycle saw and did."""

    started: float
    finished: float = 0.0
    targets: int = 0
    findings: int = 0
    decisions: list[Decision] = field(default_factory=list)
    verified: list[Decision] = field(default_factory=list)
    """Earlier changes judged in this cycle (rollbacks are in ``decisions``)."""
    errors: list[str] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        """How many decisions ended with this outcome."""
        return sum(1 for d in self.decisions if d.outcome is outcome)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable and not isinstance(exc, ConflictError)


def _wait(retry_state: Any) -> float:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, ThrottledError) and exc.retry_after:
        return float(exc.retry_after)
    return float(wait_random_exponential(multiplier=0.2, max=5.0)(retry_state))


class _over_budget(stop_base):  # noqa: N801 - named like tenacity's own stops
    """A tenacity stop: give up when the next wait would take the call past ``budget_s``."""

    def __init__(self, budget_s: float):
        self.budget_s = budget_s

    def __call__(self, retry_state: Any) -> bool:
        return bool(retry_state.idle_for + retry_state.upcoming_sleep > self.budget_s)


class Daemon:
    """One tuner instance: providers, a rule base, a store and a notifier, wired together."""

    def __init__(
        self,
        *,
        providers: Sequence[Provider],
        rules: RuleBase | Callable[[], RuleBase],
        store: Store,
        notifier: Notifier | None = None,
        clock: Clock | None = None,
        mode: Mode = Mode.APPLY,
        window_s: float = 60.0,
        guard_policy: GuardPolicy | None = None,
        verify_policy: VerifyPolicy | None = None,
        attempts: int = 3,
        retry_budget_s: float = 10.0,
        retention_s: float | None = 30 * DAY_S,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.providers = list(providers)
        self._rules = rules
        self.store = store
        self.notifier = notifier
        self.clock = clock or SystemClock()
        self.mode = mode
        self.window_s = window_s
        self.guard_policy = guard_policy or GuardPolicy(mode=mode)
        self.verify_policy = verify_policy or VerifyPolicy()
        self.attempts = attempts
        self.retry_budget_s = retry_budget_s
        """Longest time one provider call may spend waiting between its attempts."""
        self._sleep = sleep
        self.retention_s = retention_s
        """How long decisions are kept in the store (at least a day, which the guard reads)."""
        self._pruned_at = float("-inf")
        saved = store.get_state(_STREAKS_KEY)
        self.streaks = Streaks(json.loads(saved) if saved else None)
        self._lock = threading.Lock()
        self._throttled: set[str] = set()
        """Providers that kept throttling in this cycle: no more changes for them until the next."""
        self.observers: list[CycleObserver] = []
        """Told what each cycle saw (the dashboard's state, the metrics); empty by default."""

    @property
    def rules(self) -> RuleBase:
        """The rule base in force now."""
        return self._rules() if callable(self._rules) else self._rules

    def _retry(self, fn: Callable[[], Any]) -> Any:
        for attempt in Retrying(
            stop=stop_any(stop_after_attempt(self.attempts), _over_budget(self.retry_budget_s)),
            wait=_wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
            sleep=self._sleep,
        ):
            with attempt:
                return fn()
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------ the cycle

    def run_cycle(self) -> CycleReport:
        """Run one full cycle over every provider; never raises for a provider's fault."""
        with self._lock:
            return self._cycle()

    def _cycle(self) -> CycleReport:
        if self.store.open_intents():
            self._reconcile()  # a crash left changes unsettled that could not be settled at start
        self._throttled.clear()
        now = self.clock.now()
        report = CycleReport(started=now)
        rules = self.rules
        start = now - self.window_s
        observed: list[tuple[Provider, Target, WindowFacts | None]] = []
        listed: set[str] = set()
        for provider in self.providers:
            try:
                targets = list(self._retry(provider.targets))
                windows = self._retry(partial(provider.observe, targets, start, now))
            except Exception as exc:  # noqa: BLE001 - one provider never stops the others
                report.errors.append(f"{provider.name}: {exc}")
                log.error("provider failed", provider=provider.name, error=str(exc))
                continue
            report.targets += len(targets)
            listed.add(provider.name)
            observed.extend(
                (provider, t, _current(windows.get(t.ref), start, now)) for t in targets
            )
        fleet = fleet_facts(len(observed), [w for _, _, w in observed if w is not None])
        pending = _by_ref(self.store.pending_verification())
        planned: list[Decision] = []
        targets_by_ref: dict[FunctionRef, tuple[Provider, Target]] = {}
        compiled = {r.name: r for r in rules.rules}
        for provider, target, window in observed:
            targets_by_ref[target.ref] = (provider, target)
            try:
                facts = build_facts(target, window, fleet)
                for decision in pending.get(target.ref, ()):
                    judged, rollback = self._verify(decision, facts, start, provider, target)
                    report.verified.extend(judged)
                    report.decisions.extend(rollback)
                findings, resolved = evaluate(rules, target, facts, self.streaks, now)
                report.findings += len(findings)
                for observer in self.observers:
                    observer.function_observed(target, facts, findings, now)
                for finding in findings:
                    planned.extend(
                        plan_finding(compiled[finding.rule], finding, target, self.mode, now)
                    )
                planned.extend(self._resolved(target.ref, name, facts, now) for name in resolved)
            except Exception as exc:  # noqa: BLE001 - one function never stops the others
                self._function_failed(report, target.ref, exc)
        for ref, gone in pending.items():
            if ref not in targets_by_ref and ref.provider in listed:
                report.verified.extend(self._settle(d, Verification.UNCHANGED, _GONE) for d in gone)
        history = self.store.applied_since(now - DAY_S, with_facts=False)
        cooldowns = {r.name: r.rule.cooldown for r in rules.rules}
        for decision in guard(planned, history, cooldowns, self.guard_policy, now):
            decision = held(self.store, decision)  # a person paused tuning of this function
            try:
                if decision.outcome is Outcome.APPLIED:
                    provider, target = targets_by_ref[decision.ref]
                    if provider.name in self._throttled:
                        decision = decision.with_outcome(Outcome.SKIPPED, _THROTTLED)
                        self.store.record(decision)
                    else:
                        decision, target = self._apply(provider, target, decision)
                    targets_by_ref[decision.ref] = (provider, target)
                else:
                    self.store.record(decision)
            except Exception as exc:  # noqa: BLE001 - one function never stops the others
                self._function_failed(report, decision.ref, exc)
                continue
            report.decisions.append(decision)
        self._forget_streaks(listed, {target.ref.key for _, target, _ in observed})
        self._prune(now)
        self.store.put_state(_STREAKS_KEY, json.dumps(self.streaks.counts))
        self._notify([d for d in report.decisions if d.outcome not in _SILENT])
        report.finished = self.clock.now()
        for observer in self.observers:
            observer.cycle_finished(report, rules)
        log.info(
            "cycle",
            targets=report.targets,
            findings=report.findings,
            applied=report.count(Outcome.APPLIED),
            errors=len(report.errors),
            seconds=round(report.finished - report.started, 3),
        )
        return report

    def _prune(self, now: float) -> None:
        """Once an hour, drop the decisions older than the retention from the store."""
        if self.retention_s is None or now - self._pruned_at < HOUR_S:
            return
        self._pruned_at = now
        deleted = self.store.prune(now - max(self.retention_s, DAY_S))
        if deleted:
            log.info("store pruned", decisions=deleted, retention_s=self.retention_s)

    def _forget_streaks(self, listed: set[str], seen: set[str]) -> None:
        """Drop the streaks of functions that their provider, which answered, no longer lists."""
        silent = {k for k in self.streaks.counts if FunctionRef.parse(k).provider not in listed}
        self.streaks.forget(seen | silent)

    @staticmethod
    def _function_failed(report: CycleReport, ref: FunctionRef, exc: Exception) -> None:
        report.errors.append(f"{ref.key}: {exc}")
        log.error(
            "function failed", function=ref.key, error=str(exc), error_type=type(exc).__name__
        )

    def _resolved(self, ref: FunctionRef, rule: str, facts: dict[str, Any], now: float) -> Decision:
        compiled = self.rules.by_name(rule)
        return Decision(
            id=uuid.uuid4().hex, time=now, ref=ref, rule=rule, action="resolved",
            severity=compiled.rule.severity if compiled else Severity.INFO,
            mode=self.mode, outcome=Outcome.NOTIFIED, facts=facts,
            summary=f"{rule}: resolved, the condition no longer holds",
            channels=tuple(compiled.rule.notify) if compiled else (),
            group=f"function:{ref.key}",
        )  # fmt: skip

    def _notify(self, decisions: list[Decision]) -> None:
        if self.notifier is None or not decisions:
            return
        try:
            self.notifier.notify(decisions)
        except Exception as exc:  # noqa: BLE001 - a notifier fault never stops the loop
            log.error("notifier failed", error=str(exc))

    # ------------------------------------------------------------ applying

    def _apply(
        self, provider: Provider, target: Target, decision: Decision
    ) -> tuple[Decision, Target]:
        """Apply one change with an intent written first; re-read and re-plan on conflicts."""
        assert decision.change is not None
        change = decision.change
        intent = Intent(uuid.uuid4().hex, decision.id, decision.ref, (change,), self.clock.now())
        self.store.begin_intent(intent, decision.with_outcome(Outcome.APPLYING))
        purpose = decision.summary or f"rule {decision.rule}"
        for _ in range(self.attempts):
            try:
                config = self._retry(partial(provider.apply, target, [change], reason=purpose))
            except ConflictError as exc:
                log.warning("conflict, re-reading", function=decision.ref.key, error=str(exc))
                try:
                    live = self._retry(partial(provider.read, decision.ref))
                except ProviderError as read_exc:
                    return self._failed(intent, decision, f"re-read failed: {read_exc}"), target
                target = replace(target, config=live)
                if live.get(change.knob) == change.after:
                    break  # someone (or an earlier attempt) already made it live
                change = Change(change.knob, live.get(change.knob), change.after)
                decision = replace(decision, change=change)
                continue
            except ThrottledError as exc:
                self._throttled.add(provider.name)
                return self._failed(intent, decision, f"the provider is throttling: {exc}"), target
            except ApplyFailedError as exc:
                target, restored = self._restore(provider, target, change)
                why = f"the provider could not apply it: {exc}; {restored}"
                return self._failed(intent, decision, why), target
            except Exception as exc:  # noqa: BLE001 - recorded, never half-done silently
                return self._failed(intent, decision, str(exc)), target
            target = replace(target, config=config)
            break
        else:
            return self._failed(intent, decision, "conflicts persisted after re-reading"), target
        # A rollback keeps the verdict that called for it; a change waits for its own.
        verdict = decision.verification if decision.undoes else Verification.PENDING
        done = replace(decision, outcome=Outcome.APPLIED, verification=verdict)
        self.store.finish_intent(intent.id, "done", done)
        log.info("applied", function=decision.ref.key, change=change.describe(), rule=decision.rule)
        return done, target

    def _restore(self, provider: Provider, target: Target, change: Change) -> tuple[Target, str]:
        """After a failed update, put the knob back to its value before the change, if it moved."""
        try:
            live = self._retry(lambda: provider.read(target.ref))
            target = replace(target, config=live)
            value = live.get(change.knob)
            if change.before is None or value == change.before:
                return target, f"{change.knob.value} is unchanged"
            undo = Change(change.knob, value, change.before)
            restored = self._retry(partial(provider.apply, target, [undo], reason=_RESTORING))
            target = replace(target, config=restored)
        except Exception as exc:  # noqa: BLE001 - reported in the failed decision
            log.error("restore failed", function=target.ref.key, error=str(exc))
            return target, f"restoring {change.knob.value} failed: {exc}"
        log.warning("restored", function=target.ref.key, change=undo.describe())
        return target, f"restored {undo.describe()}"

    def _failed(self, intent: Intent, decision: Decision, reason: str) -> Decision:
        failed = decision.with_outcome(Outcome.FAILED, reason)
        self.store.finish_intent(intent.id, "failed", failed)
        log.error("apply failed", function=decision.ref.key, reason=reason)
        return failed

    def reconcile(self) -> list[Decision]:
        """Settle intents left open by a crash, from the live configuration; never re-applies."""
        with self._lock:
            return self._reconcile()

    def _reconcile(self) -> list[Decision]:
        settled = []
        providers = {p.name: p for p in self.providers}
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
            live_now = all(live.get(c.knob) == c.after for c in intent.changes)
            if live_now and decision.undoes:
                done = replace(decision, outcome=Outcome.APPLIED,
                               reason="completed after a restart: the rollback was live")  # fmt: skip
                self.store.finish_intent(intent.id, "done", done)
                final = self._rolled_back(done)
            elif live_now:
                final = replace(decision, outcome=Outcome.APPLIED, verification=Verification.PENDING,
                                reason="completed after a restart: the change was live")  # fmt: skip
                self.store.finish_intent(intent.id, "done", final)
            else:
                final = decision.with_outcome(
                    Outcome.FAILED, "interrupted before the change went live"
                )
                self.store.finish_intent(intent.id, "abandoned", final)
            log.warning("reconciled", function=intent.ref.key, outcome=final.outcome.value)
            settled.append(final)
        for undo in self.store.unsettled_rollbacks():  # a crash after the rollback was recorded
            settled.append(self._rolled_back(undo))
            log.warning("reconciled", function=undo.ref.key, outcome=Outcome.ROLLED_BACK.value)
        self._notify(settled)
        return settled

    # ------------------------------------------------------------ verifying

    def _verify(
        self,
        decision: Decision,
        facts: dict[str, Any],
        window_start: float,
        provider: Provider,
        target: Target,
    ) -> tuple[list[Decision], list[Decision]]:
        """Judge an applied change from a window that began after it; roll back if worse.

        Returns the judged decision (when a verdict was reached) and any rollback decision.
        Invocations in flight at the change finish within the function's timeout; a window
        that may still hold them can show that the change helped or hurt, but not that
        nothing changed, so such a window does not count towards ``windows``.
        """
        if decision.time > window_start:
            return [], []  # the window holds data from before the change
        compiled = self.rules.by_name(decision.rule)
        condition = compiled.condition if compiled else None
        verdict = verify(decision.facts, facts, decision.action, condition, self.verify_policy)
        in_flight = decision.time + (target.config.timeout_s or 0.0) > window_start
        if in_flight and verdict in (Verification.UNCHANGED, Verification.PENDING):
            return [], []
        key = f"verify:{decision.id}"
        seen = int(self.store.get_state(key) or 0) + 1
        self.store.put_state(key, str(seen))
        change = decision.change
        assert change is not None
        if verdict is Verification.PENDING:
            if seen < 3 * self.verify_policy.windows:
                return [], []
            return [self._settle(decision, Verification.UNCHANGED, _TOO_QUIET)], []
        if verdict is Verification.UNCHANGED and seen < self.verify_policy.windows:
            return [], []
        superseded = target.config.get(change.knob) != change.after
        unhelpful = (
            verdict is Verification.UNCHANGED
            and self.verify_policy.rollback_unhelpful
            and change.knob in _COST_KNOBS
            and change.before is not None
            and change.after > change.before
        )
        if superseded or not (verdict is Verification.WORSE or unhelpful):
            note = evidence(decision.facts, facts, decision.action)
            return [self._settle(decision, verdict, note)], []
        rollback = self._rollback(decision, verdict, facts, provider, target)
        return [
            replace(
                decision,
                outcome=rollback.outcome
                if rollback.outcome is Outcome.ROLLED_BACK
                else decision.outcome,
                verification=verdict,
            )
        ], [rollback]

    def _settle(self, decision: Decision, verdict: Verification, reason: str) -> Decision:
        """Record the verdict on a change that stays, and forget its window counter."""
        self.store.set_outcome(decision.id, verification=verdict, reason=reason)
        self.store.delete_state(f"verify:{decision.id}")
        return replace(decision, verification=verdict, reason=reason)

    def _rollback(
        self,
        decision: Decision,
        verdict: Verification,
        facts: dict[str, Any],
        provider: Provider,
        target: Target,
    ) -> Decision:
        change = decision.change
        assert change is not None and change.before is not None
        undo = replace(
            decision,
            id=uuid.uuid4().hex,
            time=self.clock.now(),
            action="rollback",
            change=Change(change.knob, change.after, change.before),
            facts=facts,
            summary=f"rolled back {change.describe()}: {_why_rolled_back(verdict)}",
            verification=verdict,
            undoes=decision.id,
        )
        done, _ = self._apply(provider, target, undo)  # recorded with its intent
        if done.outcome is Outcome.APPLIED:
            done = self._rolled_back(done)
        return done

    def _rolled_back(self, undo: Decision) -> Decision:
        """Mark a rollback that went live, and the change it reverses, as rolled back."""
        why = _why_rolled_back(undo.verification)
        self.store.set_outcome(
            undo.undoes, Outcome.ROLLED_BACK, undo.verification, f"rolled back: {why}"
        )
        self.store.delete_state(f"verify:{undo.undoes}")
        done = undo.with_outcome(Outcome.ROLLED_BACK)
        self.store.record(done)
        return done


def _why_rolled_back(verdict: Verification | None) -> str:
    if verdict is Verification.WORSE:
        return "it made things worse"
    return "it cost more and did not help"


def _current(window: WindowFacts | None, start: float, end: float) -> WindowFacts | None:
    """The window when it overlaps ``[start, end)``; late, future or inverted windows are no data."""
    if window is None or (window.start < window.end and window.end > start and window.start < end):
        return window
    log.warning("window out of range, ignored", function=window.ref.key,
                start=window.start, end=window.end, wanted_start=start, wanted_end=end)  # fmt: skip
    return None


def _by_ref(decisions: list[Decision]) -> dict[FunctionRef, list[Decision]]:
    out: dict[FunctionRef, list[Decision]] = {}
    for d in decisions:
        out.setdefault(d.ref, []).append(d)
    return out


def run_forever(
    daemon: Daemon,
    interval_s: float,
    *,
    duration_s: float | None = None,
    on_cycle: Callable[[CycleReport], None] | None = None,
    before_cycle: Callable[[], object] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run cycles every ``interval_s`` until SIGTERM/SIGINT, ``stop`` or ``duration_s`` passes.

    The cycle under way always finishes; SIGHUP calls ``before_cycle`` (rule reload) at once.
    """
    from apscheduler.schedulers.background import BackgroundScheduler

    stop = stop or threading.Event()

    def job() -> None:
        if stop.is_set():
            return
        if before_cycle is not None:
            before_cycle()
        report = daemon.run_cycle()
        if on_cycle is not None:
            on_cycle(report)

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
        if before_cycle is not None:
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: before_cycle())
    scheduler = BackgroundScheduler()
    first = datetime.now(UTC)  # the first cycle at once
    scheduler.add_job(job, "interval", seconds=interval_s, max_instances=1, coalesce=True,
                      next_run_time=first)  # fmt: skip
    deadline = None if duration_s is None else time.monotonic() + duration_s
    scheduler.start()
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.2)
    finally:
        stop.set()
        scheduler.shutdown(wait=True)  # finish the cycle under way
        for sig, handler in previous.items():
            signal.signal(sig, handler)
