"""The AWS Lambda provider: lists, observes and changes Lambda functions across regions."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import structlog

from tuner.model import Change, FunctionConfig, FunctionRef, Target, WindowFacts
from tuner.ports import Clock
from tuner.providers.aws import actuating, logs, metrics, timing
from tuner.providers.aws.clients import RegionClients, connect
from tuner.providers.aws.errors import provider_errors
from tuner.providers.aws.facts import window_facts
from tuner.providers.aws.reports import LogSummary
from tuner.providers.aws.settings import Settings
from tuner.providers.aws.targets import list_targets
from tuner.trace.topology import Topology

log = structlog.get_logger(__name__)


class AwsProvider:
    """Implements :class:`tuner.ports.Provider` for Lambda, with CloudWatch for facts.

    Each :meth:`observe` is one cycle: a batched metrics pass over the whole fleet, then
    log reads for the functions the metrics flag or that are due for right-sizing.
    """

    def __init__(self, settings: Settings, *, clock: Clock) -> None:
        self.settings = settings
        self.name = settings.name
        self.clock = clock
        self._clients: dict[str, RegionClients] = {}
        self._lock = threading.Lock()
        self._cycle = 0

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
                found.extend(list_targets(self.clients(region), self.settings))
        return found

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
        summaries: dict[str, LogSummary | None] = {
            target.ref.name: logs.read_summary(
                clients,
                target.ref.name,
                start,
                end,
                self.settings.max_log_events,
                insights=target.ref.name in insights,
                memory_mb=target.config.memory_mb,
            )
            for target in logs.choose(targets, stats, cycle, self.settings)
        }
        log.info(
            "observed",
            region=region,
            targets=len(targets),
            queries=len(queries),
            with_data=len(stats),
            logs_read=len(summaries),
        )
        return {
            t.ref: window_facts(
                t.ref, start, end, stats.get(t.ref.name, {}), summaries.get(t.ref.name)
            )
            for t in targets
            if t.ref.name in stats or summaries.get(t.ref.name) is not None
        }

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
            return actuating.read_config(self.clients(ref.scope), ref.name, self.settings)

    def apply(
        self, target: Target, changes: Sequence[Change], *, reason: str = ""
    ) -> FunctionConfig:
        """Apply the changes and wait until they are live; see :mod:`.actuating`."""
        with provider_errors(f"apply to {target.ref.key}"):
            return actuating.apply_changes(
                self.clients(target.ref.scope), target, changes, self.settings
            )
