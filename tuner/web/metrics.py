"""Prometheus metrics of the daemon, on a registry of its own (no global state).

The loop, the providers, the notifier and the rule reloader pass through a few points;
:class:`Metrics` is told at each of them and counts.  No series carries a per-function
label: the number of series stays bounded by rules, providers, channels and states.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter as Counter_
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

import tuner
from tuner.daemon.reports import STEPS
from tuner.domain.errors import ConflictError, ThrottledError
from tuner.domain.lifecycle import State
from tuner.domain.model import Finding, Target
from tuner.web.fleet import STATES, Fleet

if TYPE_CHECKING:
    from tuner.daemon.live import LiveState
    from tuner.daemon.reports import CycleReport
    from tuner.engine import RuleBase

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_CYCLE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The daemon's counters, gauges and histograms; also a :class:`tuner.daemon.live.CycleObserver`."""

    def __init__(self, registry: CollectorRegistry | None = None):
        disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series double the scrape and say nothing here
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.cycles = Counter("tuner_cycles", "Cycles run.", registry=r)
        self.cycle_errors = Counter(
            "tuner_cycle_errors", "Provider or function faults met in cycles.", registry=r
        )
        self.cycle_duration = Histogram(
            "tuner_cycle_duration_seconds",
            "How long one cycle took.",
            buckets=_CYCLE_BUCKETS,
            registry=r,
        )
        self.cycle_steps = Histogram(
            "tuner_cycle_step_seconds",
            "How long each step of a cycle took (observe, facts, verify, ... notify).",
            ["step"],
            buckets=_CALL_BUCKETS,
            registry=r,
        )
        for step in STEPS:
            self.cycle_steps.labels(step)
        self.last_cycle = Gauge(
            "tuner_last_cycle_timestamp_seconds", "When the last cycle finished.", registry=r
        )
        self.findings = Counter(
            "tuner_findings", "Rules that fired, per rule.", ["rule"], registry=r
        )
        self.decisions = Counter(
            "tuner_decisions",
            "Decisions recorded, by rule, action and outcome.",
            ["rule", "action", "outcome"],
            registry=r,
        )
        self.rollbacks = Counter("tuner_rollbacks", "Changes rolled back.", registry=r)
        self.notifications = Counter(
            "tuner_notifications",
            "Message delivery attempts, by channel and result.",
            ["channel", "result"],
            registry=r,
        )
        self.provider_calls = Counter(
            "tuner_provider_calls",
            "Calls to providers, by provider, operation and result.",
            ["provider", "operation", "result"],
            registry=r,
        )
        self.provider_seconds = Histogram(
            "tuner_provider_call_duration_seconds",
            "How long provider calls took.",
            ["provider", "operation"],
            buckets=_CALL_BUCKETS,
            registry=r,
        )
        self.reloads = Counter(
            "tuner_rule_reloads", "Rule reloads, by result (ok, error).", ["result"], registry=r
        )
        self.rules_loaded = Gauge("tuner_rules", "Rules in force.", registry=r)
        Info("tuner_build", "The running tuner.", registry=r).info({"version": tuner.__version__})
        for result in ("ok", "error"):
            self.reloads.labels(result)

    # ------------------------------------------------------------ the observer hooks

    def function_observed(
        self, target: Target, facts: Mapping[str, Any], findings: Sequence[Finding], now: float
    ) -> None:
        """Count the rules that fired for one function."""
        for finding in findings:
            self.findings.labels(finding.rule).inc()

    def cycle_finished(self, report: CycleReport, rules: RuleBase) -> None:
        """Count a cycle, its duration, its decisions and rollbacks."""
        self.cycles.inc()
        self.cycle_duration.observe(max(0.0, report.finished - report.started))
        for step, seconds in report.step_seconds.items():
            self.cycle_steps.labels(step).observe(seconds)
        self.last_cycle.set(report.finished)
        self.rules_loaded.set(len(rules.rules))
        if report.errors:
            self.cycle_errors.inc(len(report.errors))
        for d in report.decisions:
            self.decisions.labels(d.rule, d.action, d.state.value).inc()
        for d in report.verified:
            if d.state is State.ROLLED_BACK:
                self.rollbacks.inc()

    def notification(self, channel: str, result: str) -> None:
        """Count one delivery attempt: sent, retry, in-doubt or dead."""
        self.notifications.labels(channel, result).inc()

    def reload(self, ok: bool) -> None:
        """Count one rule reload that found changed files."""
        self.reloads.labels("ok" if ok else "error").inc()

    def provider_call(self, provider: str, operation: str, result: str, seconds: float) -> None:
        """Count one provider call and its duration."""
        self.provider_calls.labels(provider, operation, result).inc()
        self.provider_seconds.labels(provider, operation).observe(seconds)

    def watch(self, state: LiveState, fleet: Fleet, pending: Callable[[], int] | None) -> None:
        """Add the gauges read at scrape time: functions, states and the outbox."""
        self.watch_all(lambda: [Watched(state, fleet, pending)])

    def watch_all(self, sources: Callable[[], Iterable[Watched]]) -> None:
        """Add the same gauges, summed over the tuners ``sources()`` names at scrape time."""
        self.registry.register(_StateCollector(sources))

    def exposition(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)


class Watched(NamedTuple):
    """One tuner's latest state, fleet and outbox, read by the gauges at scrape time."""

    state: LiveState
    fleet: Fleet
    pending: Callable[[], int] | None


class _StateCollector(Collector):
    """Gauges computed when scraped from the loops' latest states (bounded labels only)."""

    def __init__(self, sources: Callable[[], Iterable[Watched]]):
        self.sources = sources

    def collect(self) -> Iterator[GaugeMetricFamily]:
        per_provider: Counter_[str] = Counter_()
        per_state: Counter_[str] = Counter_()
        pending = 0
        for source in self.sources():
            per_provider.update(source.state.per_provider)
            per_state.update(source.fleet.counts())
            # a closed outbox reads as empty, never a failed scrape
            with contextlib.suppress(Exception):
                pending += source.pending() if source.pending else 0
        functions = GaugeMetricFamily(
            "tuner_functions", "Functions managed, by provider.", labels=["provider"]
        )
        for provider, n in sorted(per_provider.items()):
            functions.add_metric([provider], n)
        yield functions
        states = GaugeMetricFamily(
            "tuner_function_states", "Functions in each fleet state.", labels=["state"]
        )
        for state in STATES:
            states.add_metric([state], per_state.get(state, 0))
        yield states
        outbox = GaugeMetricFamily("tuner_outbox_pending", "Messages queued and not yet delivered.")
        outbox.add_metric([], pending)
        yield outbox


_OPERATIONS = ("targets", "observe", "read", "apply")


class MeteredProvider:
    """A provider that counts its calls and their results; everything else passes through."""

    def __init__(self, provider: Any, metrics: Metrics):
        self._provider = provider
        self._metrics = metrics
        self.name: str = provider.name

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._provider, name)
        if name not in _OPERATIONS:
            return value
        return self._metered(name, value)

    def _metered(self, operation: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = "error"
            try:
                out = fn(*args, **kwargs)
                result = "ok"
                return out
            except ConflictError:
                result = "conflict"
                raise
            except ThrottledError:
                result = "throttled"
                raise
            finally:
                self._metrics.provider_call(
                    self.name, operation, result, time.perf_counter() - started
                )

        return call

    @property
    def wrapped(self) -> Any:
        """The provider itself."""
        return self._provider
