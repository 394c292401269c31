"""The control loop: observe, evaluate, plan, guard, apply, verify, record and notify.

:class:`Daemon` runs one cycle at a time (``run_cycle``); :func:`run_forever` schedules
cycles with APScheduler and stops gracefully on SIGTERM/SIGINT, finishing the cycle
under way.  One failing provider or function never stops the cycle for the rest.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import structlog

from tuner.daemon.applying import Applier
from tuner.daemon.collector import tune_collector
from tuner.daemon.control import held
from tuner.daemon.insight import CycleObserver
from tuner.daemon.retrying import Retrier
from tuner.decisions.guard import (
    DAY_S,
    HOUR_S,
    Deferred,
    GuardPolicy,
    failed_invocations,
    fleet_cap,
    guard,
    history_span,
)
from tuner.decisions.planning import HeldPlans, function_group, replan
from tuner.decisions.verifying import GONE, VerifyPolicy, judge
from tuner.domain.lifecycle import EVENTS, UNTOLD, State, Verdict
from tuner.domain.model import (
    Change,
    Decision,
    Finding,
    FunctionRef,
    Mode,
    Severity,
    Target,
    WindowFacts,
    new_id,
)
from tuner.domain.ports import Clock, Notifier, Provider, Store
from tuner.engine import RuleBase, Streaks, build_facts, evaluate, fleet_facts
from tuner.engine.rulefiles import CompiledRule
from tuner.engine.telemetry import impossible

log = structlog.get_logger(__name__)

_STREAKS_KEY = "streaks"
_THROTTLED = "the provider is throttling changes: tried again next cycle"


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

    def count(self, state: State) -> int:
        """How many decisions ended in this state."""
        return sum(1 for d in self.decisions if d.state is state)


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
        self.guard_policy = guard_policy or GuardPolicy()
        self.verify_policy = verify_policy or VerifyPolicy()
        self._retry = Retrier(attempts, retry_budget_s, sleep)
        self.applier = Applier(store, self.clock, self._retry, self._replan)
        self.retention_s = retention_s
        """How long decisions are kept in the store (at least a day, which the guard reads)."""
        self._pruned_at = float("-inf")
        saved = store.get_state(_STREAKS_KEY)
        self.streaks = Streaks(json.loads(saved) if saved else None)
        self._lock = threading.Lock()
        tune_collector()  # a cycle builds and drops many objects: see tuner.daemon.collector
        self._held = HeldPlans()
        self.observers: list[CycleObserver] = []
        """Told what each cycle saw (the dashboard's state, the metrics); empty by default."""

    @property
    def rules(self) -> RuleBase:
        """The rule base in force now."""
        return self._rules() if callable(self._rules) else self._rules

    # ------------------------------------------------------------ the cycle

    def run_cycle(self) -> CycleReport:
        """Run one full cycle over every provider; never raises for a provider's fault."""
        with self._lock:
            return self._cycle()

    def _cycle(self) -> CycleReport:
        if self.store.open_intents():
            self._reconcile()  # a crash left changes unsettled that could not be settled at start
        self.applier.throttled.clear()
        now = self.clock.now()
        report = CycleReport(started=now)
        rules = self.rules
        start = now - self.window_s
        writes: list[Decision] = []  # recorded at the end of the cycle, in one transaction
        settled: list[
            Decision
        ] = []  # the same, and counted when made again (tuner.decisions.repeats)
        bad: list[Decision] = []  # windows that cannot be true: recorded as settled, not reported
        observed, listed = self._observe(report, start, now, bad)
        tune_collector(len(observed))  # sized to the fleet: see tuner.daemon.collector
        fleet = fleet_facts(len(observed), [w for _, _, w in observed if w is not None])
        pending = _by_ref(self.store.pending_verification())
        planned: list[Decision | Deferred] = []
        targets_by_ref: dict[FunctionRef, tuple[Provider, Target]] = {}
        planned_from: dict[FunctionRef, Target] = {}  # as observed, for the held plans
        compiled = {r.name: r for r in rules.rules}
        for provider, target, window in observed:
            targets_by_ref[target.ref] = (provider, target)
            try:
                facts = build_facts(target, window, fleet)
                for decision in pending.get(target.ref, ()) if pending else ():
                    report.verified.extend(
                        self._verify(decision, facts, start, provider, target, writes)
                    )
                findings, resolved = evaluate(rules, target, facts, self.streaks, now)
                for observer in self.observers:
                    observer.function_observed(target, facts, findings, now)
                if findings:
                    report.findings += len(findings)
                    planned_from[target.ref] = target
                    planned.extend(
                        self._deferred(compiled[f.rule], f, target, now, report) for f in findings
                    )
                if resolved:
                    planned.extend(self._resolved(target.ref, n, facts, now) for n in resolved)
            except Exception as exc:  # noqa: BLE001 - one function never stops the others
                self._function_failed(report, target.ref, exc)
        for ref, gone in pending.items():
            if ref not in targets_by_ref and ref.provider in listed:
                for d in gone:
                    report.verified.append(d.advance(State.UNCHANGED, GONE))
                    writes.append(report.verified[-1])
        cooldowns = {r.name: r.rule.cooldown for r in rules.rules}
        since = now - history_span(cooldowns, self.guard_policy)
        history = self.store.applied_since(since, with_facts=False)
        applied: dict[int, Decision] = {}  # by position, among the settled ones
        guarded = guard(planned, history, cooldowns, self.guard_policy, now)
        for decision in guarded:
            decision = held(self.store, decision)  # a person paused tuning of this function
            try:
                if decision.verdict is not Verdict.APPLY or decision.state is not State.PLANNED:
                    settled.append(decision)
                else:
                    applied[len(settled) + len(applied)] = self._apply(decision, targets_by_ref)
            except Exception as exc:  # noqa: BLE001 - one function never stops the others
                self._function_failed(report, decision.ref, exc)
        self._forget_streaks(listed, {target.ref.key for _, target, _ in observed})
        recorded = iter(self._record_cycle(report, writes, [*settled, *bad], now))
        report.decisions.extend(
            applied[i] if i in applied else next(recorded)
            for i in range(len(applied) + len(settled))
        )
        self._held.remember(
            report.decisions, fleet_cap(self.guard_policy), compiled, planned_from, self.mode
        )
        told = [d for d in report.decisions if d.state not in UNTOLD]
        self._notify(told + [d for d in report.verified if d.state in EVENTS])
        self._prune_store(now)
        report.finished = self.clock.now()
        for observer in self.observers:
            observer.cycle_finished(report, rules)
        log.info(
            "cycle",
            targets=report.targets,
            findings=report.findings,
            applied=report.count(State.APPLIED),
            errors=len(report.errors),
            seconds=round(report.finished - report.started, 3),
        )
        return report

    def _deferred(
        self,
        compiled: CompiledRule,
        finding: Finding,
        target: Target,
        now: float,
        report: CycleReport,
    ) -> Deferred:
        """A finding to plan when the guard comes to it (held again unplanned while the caps are full)."""

        def plan(capped: bool) -> list[Decision]:
            try:
                return self._held.plan(compiled, finding, target, self.mode, now, capped)
            except Exception as exc:  # noqa: BLE001 - one function never stops the others
                self._function_failed(report, target.ref, exc)
                return []

        return Deferred(compiled.rule.severity, plan, failed_invocations(finding.facts))

    def _observe(
        self, report: CycleReport, start: float, now: float, bad: list[Decision]
    ) -> tuple[list[tuple[Provider, Target, WindowFacts | None]], set[str]]:
        """Every provider's targets and their windows; a failing provider is left out."""
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
            for target in targets:
                window = windows.get(target.ref)
                why = impossible(window) if window is not None else None
                if why is not None:
                    bad.append(self._bad_telemetry(target, why, now))
                    window = None
                observed.append((provider, target, _current(window, start, now)))
        return observed, listed

    def _bad_telemetry(self, target: Target, why: str, now: float) -> Decision:
        """The record of a window that cannot be true; the function is treated as having no data."""
        log.warning("bad telemetry, window ignored", function=target.ref.key, why=why)
        return Decision(
            id=new_id(),
            time=now,
            ref=target.ref,
            rule="telemetry",
            action="ignore-window",
            severity=Severity.WARNING,
            mode=self.mode,
            summary=f"bad telemetry: {why}",
            group=function_group(target.ref),
        ).with_verdict(Verdict.SKIP, f"bad telemetry: {why}: no rule acts on this window")

    def _apply(
        self, decision: Decision, targets_by_ref: dict[FunctionRef, tuple[Provider, Target]]
    ) -> Decision:
        """Apply a decision the guard let go ahead (its intent and outcome are recorded)."""
        provider, target = targets_by_ref[decision.ref]
        if provider.name in self.applier.throttled:
            return self._record(decision.advance(State.SKIPPED, _THROTTLED))
        decision, target = self.applier.apply(provider, target, decision)
        targets_by_ref[decision.ref] = (provider, target)
        return decision

    def _record(self, decision: Decision) -> Decision:
        self.store.record(decision)
        return decision

    def _record_cycle(
        self, report: CycleReport, writes: list[Decision], made: list[Decision], now: float
    ) -> list[Decision]:
        """Write the cycle's record in one transaction; a failing write never stops the cycle.

        ``writes`` (verifications) are written as they are; a decision in ``made`` that says
        the same as in the previous cycle is counted on its record (:mod:`tuner.decisions.repeats`).
        Returns ``made`` as recorded.
        """
        # plain str -> str -> int: no cycles to look for, and no spaces to store
        counts = json.dumps(self.streaks.counts, check_circular=False, separators=(",", ":"))
        state = {_STREAKS_KEY: counts}
        try:
            return self.store.record_cycle(now, writes, made, state, 2 * self.window_s)
        except Exception as exc:  # noqa: BLE001 - a full disk never stops the cycle
            report.errors.append(f"decisions not recorded: {exc}")
            log.error("decisions not recorded", decisions=len(writes) + len(made), error=str(exc))
            return made

    def _prune_store(self, now: float) -> None:
        """Prune the store once an hour; a failing write never stops the cycle."""
        try:
            self._prune(now)
        except Exception as exc:  # noqa: BLE001 - tried again next hour
            log.error("store not pruned", error=str(exc))

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
        silent = {
            k
            for k in self.streaks.counts
            if k not in seen and FunctionRef.parse(k).provider not in listed
        }
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
            id=new_id(),
            time=now,
            ref=ref,
            rule=rule,
            action="resolved",
            severity=compiled.rule.severity if compiled else Severity.INFO,
            mode=self.mode,
            facts=facts,
            summary=f"{rule}: resolved, the condition no longer holds",
            channels=tuple(compiled.rule.notify) if compiled else (),
            group=function_group(ref),
        ).with_verdict(Verdict.NOTIFY)

    def _notify(self, decisions: list[Decision]) -> None:
        if self.notifier is None or not decisions:
            return
        try:
            self.notifier.notify(decisions)
        except Exception as exc:  # noqa: BLE001 - a notifier fault never stops the loop
            log.error("notifier failed", error=str(exc))

    # ------------------------------------------------------------ applying

    def _replan(self, decision: Decision, fresh: Target) -> Change | None:
        """After a conflict: the change again from the fresh configuration, or None."""
        compiled = self.rules.by_name(decision.rule)
        return replan(compiled, decision, fresh)

    def reconcile(self) -> list[Decision]:
        """Settle intents left open by a crash, from the live configuration; never re-applies."""
        with self._lock:
            return self._reconcile()

    def _reconcile(self) -> list[Decision]:
        settled = self.applier.reconcile({p.name: p for p in self.providers})
        self._notify(settled)
        return settled

    # ------------------------------------------------------------ verifying

    def _verify(
        self,
        decision: Decision,
        facts: Mapping[str, Any],
        window_start: float,
        provider: Provider,
        target: Target,
        writes: list[Decision],
    ) -> list[Decision]:
        """Judge an applied change from one window; record the verdict or roll it back.

        Returns what to report: the change once judged (rolled back, when it was), and a
        rollback that failed.  A window counted or a verdict goes into ``writes`` (the
        cycle's record); a rollback is recorded at once, before it is applied.
        """
        compiled = self.rules.by_name(decision.rule)
        condition = compiled.condition if compiled else None
        judgement = judge(
            decision, facts, window_start, target.config, condition, self.verify_policy
        )
        if judgement.counted:
            decision = replace(decision, judged_windows=decision.judged_windows + 1)
        if judgement.state is None:
            if judgement.counted:
                writes.append(decision)
            return []
        if not judgement.rollback:
            judged = self.applier.judged(decision, judgement.state, judgement.reason, provider)
            if judged.state is State.APPLIED:
                return []  # a trial not yet promoted: judged again with the next window
            writes.append(judged)
            return [judged]
        self.store.record(decision)
        undo = self.applier.rollback(decision, judgement.reason, facts, provider, target)
        if undo.state is not State.APPLIED:
            return [undo]  # the rollback failed: the change is judged again next window
        return [d for d in [self.store.get(decision.id)] if d is not None]


def _current(window: WindowFacts | None, start: float, end: float) -> WindowFacts | None:
    """The window when it overlaps ``[start, end)``; late, future or inverted windows are no data."""
    if window is None or (window.start < window.end and window.end > start and window.start < end):
        return window
    log.warning(
        "window out of range, ignored",
        function=window.ref.key,
        start=window.start,
        end=window.end,
        wanted_start=start,
        wanted_end=end,
    )
    return None


def _by_ref(decisions: list[Decision]) -> dict[FunctionRef, list[Decision]]:
    out: dict[FunctionRef, list[Decision]] = {}
    for d in decisions:
        out.setdefault(d.ref, []).append(d)
    return out
