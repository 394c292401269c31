"""The control loop: one cycle as named steps, from observing functions to telling people.

:meth:`Daemon.run_cycle` runs the steps of :data:`tuner.daemon.reports.STEPS` in order over
one :class:`~tuner.daemon.cycle.CycleState`, and times each.  One failing provider or
function never stops the cycle for the rest.  :func:`tuner.daemon.scheduling.run_forever`
runs cycles on an interval.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from tuner.daemon.applying import Applier
from tuner.daemon.collector import tune_collector
from tuner.daemon.cycle import CycleState, ToPlan
from tuner.daemon.judging import Judging
from tuner.daemon.observing import observe
from tuner.daemon.reports import STEPS, CycleObserver, CycleReport
from tuner.daemon.retrying import Retrier
from tuner.decisions.guard import Budget, GuardPolicy, guard, history_span
from tuner.decisions.held import HeldPlans
from tuner.decisions.planning import replan, resolved_decision, superseded
from tuner.decisions.verifying import VerifyPolicy
from tuner.domain.decisions import Decision
from tuner.domain.holds import Hold, HoldKind
from tuner.domain.lifecycle import EVENTS, UNTOLD, State, Verdict
from tuner.domain.model import Change, FunctionRef, Mode, Target
from tuner.domain.ports import Clock, CycleRecord, Notifier, Provider, Store
from tuner.domain.times import DAY_S, HOUR_S
from tuner.engine import RuleBase, Streaks, build_facts, evaluate, fleet_facts

log = structlog.get_logger(__name__)

_STREAKS_KEY = "streaks"


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        """POSIX seconds."""
        return time.time()


@dataclass(frozen=True)
class DaemonSettings:
    """How the daemon runs: its mode, window, guard and verification, retries and retention."""

    mode: Mode = Mode.APPLY
    window_s: float = 60.0
    guard_policy: GuardPolicy = field(default_factory=GuardPolicy)
    verify_policy: VerifyPolicy = field(default_factory=VerifyPolicy)
    attempts: int = 3
    retry_budget_s: float = 10.0
    retention_s: float | None = 30 * DAY_S
    """How long decisions are kept in the store (at least a day, which the guard reads)."""
    remember_every_s: float = HOUR_S
    """How often each function's facts are written to the store (a new function's at once),
    so that ``tuner status`` and ``tuner why`` know the whole fleet after the daemon stops."""


class Daemon:
    """One tuner instance: providers, a rule base, a store and a notifier, run cycle by cycle."""

    def __init__(
        self,
        *,
        providers: Sequence[Provider],
        rules: RuleBase | Callable[[], RuleBase],
        store: Store,
        notifier: Notifier | None = None,
        clock: Clock | None = None,
        settings: DaemonSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.providers = list(providers)
        self._rules = rules
        self.store = store
        self.notifier = notifier
        self.clock = clock or SystemClock()
        self.settings = settings or DaemonSettings()
        self.retry = Retrier(self.settings.attempts, self.settings.retry_budget_s, sleep)
        self.applier = Applier(store, self.clock, self.retry, self._replan)
        self.lock = threading.Lock()
        """Held while a cycle runs; a person's change by hand waits for it."""
        self.observers: list[CycleObserver] = []
        """Told what each cycle saw (the dashboard's state, the metrics); empty by default."""
        self.paused_by: Callable[[str], dict[str, str] | None] = lambda key: None
        """Who paused tuning of a function (by key), or None; wiring sets manual control's."""
        saved = store.get_state(_STREAKS_KEY)
        self.streaks = Streaks(json.loads(saved) if saved else None)
        self._judging = Judging(store, self.applier, self.settings.verify_policy)
        self._held = HeldPlans()
        self._pruned_at = float("-inf")
        self._regular_at = float("-inf")
        """When the last regular cycle ran: an early cycle's window starts there."""
        self._remembered: dict[str, float] = {}
        """When each function's facts were last written to the store, by key."""
        tune_collector()  # a cycle builds and drops many objects: see tuner.daemon.collector

    @property
    def rules(self) -> RuleBase:
        """The rule base in force now."""
        return self._rules() if callable(self._rules) else self._rules

    @property
    def mode(self) -> Mode:
        """The global mode: observe, recommend or apply."""
        return self.settings.mode

    # ------------------------------------------------------------ the cycle

    def run_cycle(self, only: frozenset[FunctionRef] | None = None) -> CycleReport:
        """Run one full cycle over every provider; never raises for a provider's fault.

        With ``only``, an early cycle (:class:`tuner.daemon.scheduling.EarlyCycles`): just
        those functions, over what has passed since the last regular cycle.
        """
        with self.lock:
            if self.store.open_intents():
                self._reconcile()  # a crash left changes that could not be settled at start
            self.applier.throttled.clear()
            now = self.clock.now()
            start = now - self.settings.window_s
            if only is None:
                self._regular_at = now
            else:
                start = max(start, self._regular_at)
            report = CycleReport(now, early=only is not None)
            cycle = CycleState(now, start, self.rules, report, only=only)
            steps = (
                self._observe,
                self._facts,
                self._verify,
                self._evaluate,
                self._plan,
                self._guard,
                self._apply,
                self._record,
                self._notify_cycle,
            )
            for name, step in zip(STEPS, steps, strict=True):
                began = time.perf_counter()
                step(cycle)
                cycle.report.step_seconds[name] = time.perf_counter() - began
            return self._finish(cycle)

    def _observe(self, c: CycleState) -> None:
        observe(c, self.providers, self.retry, self.mode, c.only)
        if c.only is None:  # an early cycle sees a few functions, not the fleet
            tune_collector(len(c.observed))  # sized to the fleet: see tuner.daemon.collector

    def _facts(self, c: CycleState) -> None:
        windows = [o.window for o in c.observed if o.window is not None]
        fleet = fleet_facts(len(c.observed), windows)
        for o in c.observed:
            try:
                o.facts = build_facts(o.target, o.window, fleet)
            except Exception as exc:  # noqa: BLE001 - one function never stops the others
                self._function_failed(c.report, o.target.ref, exc)

    def _verify(self, c: CycleState) -> None:
        pending: dict[FunctionRef, list[Decision]] = {}
        for d in self.store.pending_verification():
            pending.setdefault(d.ref, []).append(d)
        if pending:
            self._judging.verify(c, pending)

    def _evaluate(self, c: CycleState) -> None:
        compiled = {r.name: r for r in c.rules.rules}
        for o in c.observed:
            if o.facts is None:
                continue
            ref = o.target.ref
            try:
                findings, resolved = evaluate(c.rules, o.target, o.facts, self.streaks, c.now)
            except Exception as exc:  # noqa: BLE001 - one function never stops the others
                self._function_failed(c.report, ref, exc)
                continue
            for observer in self.observers:
                observer.function_observed(o.target, o.facts, findings, c.now)
            c.report.findings += len(findings)
            c.findings.extend(ToPlan(compiled[f.rule], f, o.target) for f in findings)
            c.resolved.extend(
                resolved_decision(c.rules.by_name(n), ref, o.facts, self.mode, c.now)
                for n in resolved
            )
        self._forget_streaks(c)

    def _plan(self, c: CycleState) -> None:
        """Plan every finding; those the caps will hold back anyway as held before, unplanned.

        The findings are tried in the guard's order on a copy of the budget, so that a
        finding is planned in full exactly when the guard may let one of its changes go.
        """
        cooldowns = {r.name: r.rule.cooldown for r in c.rules.rules}
        since = c.now - history_span(cooldowns, self.settings.guard_policy)
        history = self.store.applied_since(since, with_facts=False)
        c.budget = Budget.start(history, cooldowns, self.settings.guard_policy, c.now)
        trial = c.budget.copy()
        planned: list[list[Decision]] = [[] for _ in c.findings]
        for i in sorted(range(len(c.findings)), key=lambda i: c.findings[i].urgency):
            item = c.findings[i]
            try:
                planned[i] = self._held.plan(
                    item.compiled, item.finding, item.target, self.mode, c.now, trial.full
                )
            except Exception as exc:  # noqa: BLE001 - one function never stops the others
                self._function_failed(c.report, item.target.ref, exc)
            for d in planned[i]:
                trial.admit(d)
        c.planned = [d for decisions in planned for d in decisions] + c.resolved

    def _guard(self, c: CycleState) -> None:
        assert c.budget is not None
        c.guarded = guard(c.planned, c.budget)

    def _apply(self, c: CycleState) -> None:
        """Apply what the guard let go ahead, unless paused or the provider is throttling."""
        targets = {o.target.ref: (o.provider, o.target) for o in c.observed}
        for d in c.guarded:
            if d.verdict is not Verdict.APPLY or d.state is not State.PLANNED:
                c.made.append(len(c.decided))
            elif (held := self._held_back(d, targets[d.ref][0])) is not None:
                c.made.append(len(c.decided))
                d = d.held(held)
            else:
                provider, target = targets[d.ref]
                try:
                    d, live = self.applier.apply(provider, target, d)  # recorded by the applier
                except Exception as exc:  # noqa: BLE001 - one function never stops the others
                    self._function_failed(c.report, d.ref, exc)
                    continue
                targets[d.ref] = (provider, live)
            c.decided.append(d)

    def _held_back(self, d: Decision, provider: Provider) -> Hold | None:
        """A hold for a change the guard let go: its function is paused, or its provider throttles."""
        paused = self.paused_by(d.ref.key)
        if paused is not None:
            return Hold(HoldKind.PAUSE, by=paused.get("by", ""))
        if provider.name in self.applier.throttled:
            return Hold(HoldKind.THROTTLED)
        return None

    def _record(self, c: CycleState) -> None:
        """Write the cycle's record in one transaction; a failing write never stops the cycle.

        Verifications are written as they are; a decision that says the same as in the
        previous cycle is counted on its record (:mod:`tuner.decisions.repeats`).
        """
        made = [c.decided[i] for i in c.made] + c.set_aside
        # plain str -> str -> int: no cycles to look for, and no spaces to store
        counts = json.dumps(self.streaks.counts, check_circular=False, separators=(",", ":"))
        try:
            state = {_STREAKS_KEY: counts}
            record = CycleRecord(c.now, c.writes, made, state, 2 * self.settings.window_s)
            recorded = self.store.record_cycle(record)
        except Exception as exc:  # noqa: BLE001 - a full disk never stops the cycle
            c.report.errors.append(f"decisions not recorded: {exc}")
            log.error("decisions not recorded", decisions=len(c.writes) + len(made), error=str(exc))
            recorded = made
        for i, d in zip(c.made, recorded, strict=False):
            c.decided[i] = d
        c.report.decisions.extend(c.decided)  # the windows set aside are recorded, not reported
        self._supersede_recommendations(recorded)
        self._remember_fleet(c)
        self._held.remember(
            c.report.decisions,
            self.settings.guard_policy.fleet_cap,
            {r.name: r for r in c.rules.rules},
            {o.target.ref: o.target for o in c.observed},
            self.mode,
        )
        self._prune(c.now)

    def _notify_cycle(self, c: CycleState) -> None:
        report = c.report
        told = [d for d in report.decisions if d.state not in UNTOLD]
        self.notify(told + [d for d in report.verified if d.state in EVENTS])

    def _finish(self, c: CycleState) -> CycleReport:
        report = c.report
        report.finished = self.clock.now()
        for observer in self.observers:
            observer.cycle_finished(report, c.rules)
        log.info(
            "early cycle" if report.early else "cycle",
            targets=report.targets,
            findings=report.findings,
            applied=report.count(State.APPLIED),
            errors=len(report.errors),
            seconds=round(report.finished - report.started, 3),
        )
        return report

    # ------------------------------------------------------------ helpers of the steps

    def _forget_streaks(self, c: CycleState) -> None:
        """Drop the streaks of functions that their provider, which answered, no longer lists."""
        seen = {o.target.ref.key for o in c.observed}
        silent = {
            k
            for k in self.streaks.counts
            if k not in seen and FunctionRef.parse(k).provider not in c.listed
        }
        self.streaks.forget(seen | silent)

    def _supersede_recommendations(self, recorded: list[Decision]) -> None:
        """A new recommendation supersedes the older ones for its function and knob."""
        fresh = [d for d in recorded if d.state is State.RECOMMENDED and d.seen == 1 and d.change]
        older: list[Decision] = []
        for new in fresh:
            older += superseded(new, self.store.decisions(new.ref, limit=200))
        if older:
            self.store.record_many(older)

    def _remember_fleet(self, c: CycleState) -> None:
        """Write the facts of functions new to the store, or not written for a while."""
        every, last = self.settings.remember_every_s, self._remembered
        due = {
            o.target.ref.key: o.facts
            for o in c.observed
            if o.facts is not None and c.now - last.get(o.target.ref.key, -every) >= every
        }
        if not due:
            return
        try:
            self.store.remember_functions(c.now, due)
        except Exception as exc:  # noqa: BLE001 - tried again next cycle
            log.error("fleet not remembered", functions=len(due), error=str(exc))
            return
        seen = {o.target.ref.key for o in c.observed}
        self._remembered = {k: at for k, at in last.items() if k in seen}
        self._remembered.update(dict.fromkeys(due, c.now))

    def _prune(self, now: float) -> None:
        """Once an hour, drop the decisions older than the retention; a failure waits an hour."""
        retention = self.settings.retention_s
        if retention is None or now - self._pruned_at < HOUR_S:
            return
        self._pruned_at = now
        try:
            deleted = self.store.prune(now - max(retention, DAY_S))
        except Exception as exc:  # noqa: BLE001 - tried again next hour
            log.error("store not pruned", error=str(exc))
            return
        if deleted:
            log.info("store pruned", decisions=deleted, retention_s=retention)

    @staticmethod
    def _function_failed(report: CycleReport, ref: FunctionRef, exc: Exception) -> None:
        report.errors.append(f"{ref.key}: {exc}")
        log.error(
            "function failed", function=ref.key, error=str(exc), error_type=type(exc).__name__
        )

    def notify(self, decisions: list[Decision]) -> None:
        """Hand decisions to the notifier; a notifier's fault never stops the loop."""
        if self.notifier is None or not decisions:
            return
        try:
            self.notifier.notify(decisions)
        except Exception as exc:  # noqa: BLE001 - a notifier fault never stops the loop
            log.error("notifier failed", error=str(exc))

    def _replan(self, decision: Decision, fresh: Target) -> Change | None:
        """After a conflict: the change again from the fresh configuration, or None."""
        return replan(self.rules.by_name(decision.rule), decision, fresh)

    def reconcile(self) -> list[Decision]:
        """Settle intents left open by a crash, from the live configuration; never re-applies."""
        with self.lock:
            return self._reconcile()

    def _reconcile(self) -> list[Decision]:
        settled = self.applier.reconcile({p.name: p for p in self.providers})
        self.notify(settled)
        return settled
