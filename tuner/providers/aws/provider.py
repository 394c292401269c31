"""The AWS Lambda provider: lists, observes and changes Lambda functions across regions."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import structlog

from tuner.domain.decisions import Decision
from tuner.domain.model import Change, FunctionConfig, FunctionRef, Target, WindowFacts
from tuner.domain.ports import Clock
from tuner.providers.aws import actuating, aliases, canary, logs, metrics, timing
from tuner.providers.aws.clients import RegionClients, client_in, connect
from tuner.providers.aws.data_stores import DataStores, far_data
from tuner.providers.aws.errors import provider_errors
from tuner.providers.aws.facts import canary_facts, window_facts, with_handler_facts
from tuner.providers.aws.reports import LogSummary
from tuner.providers.aws.settings import Settings
from tuner.providers.aws.targets import Reach, list_targets
from tuner.trace.topology import Topology

log = structlog.get_logger(__name__)


class AwsProvider:
    """Implements :class:`tuner.domain.ports.Provider` for Lambda, with CloudWatch for facts.

    Each :meth:`observe` is one cycle: a batched metrics pass over the whole fleet, then
    log reads for the functions the metrics flag or that are due for right-sizing.  With
    ``canary`` set, changes go through the functions' alias first (:mod:`.canary`), and a
    function with a canary in flight is observed through the canary version's log lines.
    """

    def __init__(self, settings: Settings, *, clock: Clock) -> None:
        self.settings = settings
        self.name = settings.name
        self.clock = clock
        self._clients: dict[str, RegionClients] = {}
        self._lock = threading.Lock()
        self._cycle = 0
        self._canaries: dict[FunctionRef, aliases.Canary] = {}
        """tuner's canaries in flight, as last read from the aliases."""
        self._reach: dict[FunctionRef, Reach] = {}
        """What each function's configuration says of its data, as last listed."""
        self._data_clients: dict[tuple[str, str], Any] = {}
        self._data_lock = threading.Lock()
        self.data_stores = DataStores(self._data_client, clock)
        """Where the functions' data stores are (see data_stores.py)."""

    def start(self) -> None:
        """Create the clients of every configured region."""
        for region in self.settings.regions:
            self.clients(region)

    def close(self) -> None:
        """Close every client."""
        with self._lock:
            for clients in self._clients.values():
                clients.close()
            self._clients.clear()
        with self._data_lock:
            for client in self._data_clients.values():
                client.close()
            self._data_clients.clear()

    def clients(self, region: str) -> RegionClients:
        """The clients of one configured region, created on first use."""
        if region not in self.settings.regions:
            raise KeyError(f"region {region!r} is not configured for provider {self.name!r}")
        with self._lock:
            if region not in self._clients:
                with provider_errors(f"connect {region}"):
                    self._clients[region] = connect(self.settings, region)
            return self._clients[region]

    def targets(self) -> list[Target]:
        """Every managed function of every configured region."""
        found: list[Target] = []
        for region in self.settings.regions:
            with provider_errors(f"list functions in {region}"):
                listed = list_targets(self.clients(region), self.settings, self._reach)
                found.extend(self._through_alias(region, listed))
        return found

    def _through_alias(self, region: str, targets: list[Target]) -> list[Target]:
        """With canaries on, each function's configuration as its alias serves it."""
        if self.settings.canary is None:
            return targets
        clients = self.clients(region)
        served: list[Target] = []
        for target in targets:
            sizes = [target.config.batch_size] if target.config.batch_size is not None else []
            view = aliases.alias_view(
                clients, target.ref.name, target.config.revision, sizes, self.settings
            )
            self._track(target.ref, view)
            served.append(replace(target, config=view.config) if view else target)
        return served

    def _track(self, ref: FunctionRef, view: aliases.AliasView | None) -> None:
        if view is not None and view.canary is not None:
            self._canaries[ref] = view.canary
        else:
            self._canaries.pop(ref, None)

    def observe(
        self, targets: Sequence[Target], start: float, end: float
    ) -> Mapping[FunctionRef, WindowFacts]:
        """Facts for the targets over ``[start, end)``; targets without any data are absent."""
        cycle = self._cycle
        self._cycle += 1
        facts: dict[FunctionRef, WindowFacts] = {}
        for region in sorted({t.ref.scope for t in targets}):
            in_region = [t for t in targets if t.ref.scope == region]
            with provider_errors(f"observe {region}"):
                facts.update(self._observe_region(region, in_region, start, end, cycle))
        return facts

    def _observe_region(
        self, region: str, targets: Sequence[Target], start: float, end: float, cycle: int
    ) -> dict[FunctionRef, WindowFacts]:
        clients = self.clients(region)
        specs: tuple[metrics.MetricSpec, ...] = metrics.CORE_METRICS
        if self.settings.duration_percentiles:
            specs = (*specs, *metrics.PERCENTILE_METRICS)
        insights = (
            metrics.functions_with_insights(clients.cloudwatch)
            if self.settings.lambda_insights
            else set()
        )
        extra = {name: metrics.INSIGHTS_METRICS for name in insights}
        queries = metrics.plan_queries([t.ref.name for t in targets], specs, extra)
        stats = metrics.fetch_stats(clients.cloudwatch, queries, start, end)
        trials = {t.ref.name: self._canaries[t.ref] for t in targets if t.ref in self._canaries}
        chosen = [t for t in targets if t.ref.name in trials] + [
            t for t in logs.choose(targets, stats, cycle, self.settings) if t.ref.name not in trials
        ]
        summaries: dict[str, LogSummary | None] = {
            target.ref.name: logs.read_summary(
                clients,
                target.ref.name,
                start,
                end,
                self.settings.max_log_events,
                insights=target.ref.name in insights,
                memory_mb=target.config.memory_mb,
                version=trials[target.ref.name].version if target.ref.name in trials else None,
            )
            for target in chosen
        }
        log.info(
            "observed",
            region=region,
            targets=len(targets),
            queries=len(queries),
            with_data=len(stats),
            logs_read=len(summaries),
        )
        facts = {
            t.ref: window_facts(
                t.ref, start, end, stats.get(t.ref.name, {}), summaries.get(t.ref.name)
            )
            for t in targets
            if t.ref.name in stats or summaries.get(t.ref.name) is not None
        }
        for t in targets:
            if t.ref in facts and t.ref in self._reach:
                facts[t.ref] = self._with_far_data(facts[t.ref], self._reach[t.ref])
        for t in targets:  # a function on trial is judged by its canary version alone
            summary = summaries.get(t.ref.name)
            if t.ref.name in trials:
                facts.pop(t.ref, None)
                if summary is not None:
                    trial = trials[t.ref.name]
                    facts[t.ref] = canary_facts(
                        t.ref, start, end, summary, trial.version, trial.weight
                    )
        return {
            t.ref: with_handler_facts(facts[t.ref], t.config) for t in targets if t.ref in facts
        }

    def _data_client(self, service: str, region: str) -> Any:
        """A client for a data store's region (any region), from the configured ones' session."""
        session = self.clients(self.settings.regions[0]).session
        with self._data_lock:
            key = (service, region)
            if key not in self._data_clients:
                self._data_clients[key] = client_in(session, self.settings, service, region)
            return self._data_clients[key]

    def _with_far_data(self, window: WindowFacts, reach: Reach) -> WindowFacts:
        """The window with the data stores in another region or zone (unchanged without)."""
        region = window.ref.scope
        located = [self.data_stores.locate(store, region) for store in reach.stores]
        zones = self.data_stores.subnet_zones(region, reach.subnets)
        count, text = far_data(region, zones, [p for p in located if p is not None])
        if not count:
            return window
        return replace(
            window,
            extra={**window.extra, "far_data_stores": float(count)},
            evidence={**window.evidence, "far_data": text},
        )

    def timing_topology(self, start: float, end: float) -> Topology:
        """Who calls whom, mined from the REPORT lines of invocations that ended in the window.

        Nodes are function names (``region/name`` when several regions are configured).
        """
        intervals = []
        several = len(self.settings.regions) > 1
        for region in self.settings.regions:
            with provider_errors(f"read invocation timing in {region}"):
                clients = self.clients(region)
                names = [t.ref.name for t in list_targets(clients, self.settings)]
                intervals += timing.invocation_intervals(
                    clients,
                    names,
                    start,
                    end,
                    self.settings.max_log_events,
                    {n: f"{region}/{n}" for n in names} if several else None,
                )
        return timing.mined_topology(intervals)

    def read(self, ref: FunctionRef) -> FunctionConfig:
        """The live configuration of one function."""
        with provider_errors(f"read {ref.key}"):
            if self.settings.canary is None:
                return actuating.read_config(self.clients(ref.scope), ref.name, self.settings)
            config, view = canary.read_view(self.clients(ref.scope), ref.name, self.settings)
            self._track(ref, view)
            return config

    def apply(
        self, target: Target, changes: Sequence[Change], *, reason: str = ""
    ) -> FunctionConfig:
        """Apply the changes and wait until they are live; see :mod:`.actuating`."""
        with provider_errors(f"apply to {target.ref.key}"):
            clients = self.clients(target.ref.scope)
            view = canary.apply(clients, target, changes, self.settings, reason)
            if view is not None:
                self._track(target.ref, view)
                return view.config
            return actuating.apply_changes(clients, target, changes, self.settings)

    def promote(self, ref: FunctionRef, decision: Decision) -> str:
        """Send all of the alias's traffic to tuner's canary of a change judged to stay.

        Returns what was done ('' nothing: no canary); see :func:`.canary.promote`.
        """
        if self.settings.canary is None or decision.change is None:
            return ""
        with provider_errors(f"promote {ref.key}"):
            done = canary.promote(self.clients(ref.scope), ref.name, decision.change, self.settings)
            if done.startswith("promoted"):
                self._canaries.pop(ref, None)
            return done

    def abandon(self, ref: FunctionRef, changes: Sequence[Change]) -> str:
        """Put back what a canary a crash interrupted left half-done; see :func:`.canary.abandon`."""
        if self.settings.canary is None:
            return ""
        with provider_errors(f"tidy {ref.key}"):
            return canary.abandon(self.clients(ref.scope), ref.name, changes, self.settings)
