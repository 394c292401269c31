"""LocalProvider: the embedded host seen through tuner's Provider port."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from threading import Lock

import structlog

from tuner.domain.errors import ConflictError, ProviderError
from tuner.domain.model import (
    INTEGER_KNOBS,
    Change,
    FunctionConfig,
    FunctionRef,
    Knob,
    Limits,
    Target,
    WindowFacts,
)
from tuner.domain.ports import Clock
from tuner.providers.local.call_facts import with_call_facts
from tuner.providers.local.decomposing import MOST_PARTS
from tuner.providers.local.dependency_share import with_slow_dependencies
from tuner.providers.local.facts import window_facts, with_remedy_facts
from tuner.providers.local.host import FunctionHost, UnknownFunctionError
from tuner.providers.local.http_api import EndpointLimits, InvokeEndpoint
from tuner.providers.local.memory_paths import with_memory_path_facts
from tuner.providers.local.probing import with_probe_facts
from tuner.providers.local.recording import DependencyCallRecord, InvocationRecord
from tuner.providers.local.replicas import with_distance_facts
from tuner.providers.local.trace_evidence import StoredTraces, in_window, with_trace_facts
from tuner.providers.local.trace_executor import switch_tracing
from tuner.providers.local.traffic import TrafficDriver

log = structlog.get_logger(__name__)

LOCAL_LIMITS = Limits(
    memory_min_mb=64,
    memory_max_mb=4096,
    memory_step_mb=1,
    timeout_min_s=1.0,
    timeout_max_s=300.0,
    batch_min=1,
    batch_max=1000,
    fan_out_max=MOST_PARTS,
    cpu_scales_with_memory=False,
)
"""What the local host allows; memory does not buy CPU here."""

_KNOBS = frozenset(
    {
        Knob.MEMORY_MB,
        Knob.TIMEOUT_S,
        Knob.BATCH_SIZE,
        Knob.FAN_OUT,
        Knob.SPLIT_ABOVE_KB,
        Knob.CACHE_TTL_S,
        Knob.HANDOVER_S,
        Knob.FUSED,
        Knob.NEAR_REPLICA,
    }
)
"""The settings a local function has (tracing is switched, not deployed)."""


class LocalProvider:
    """Lists, observes and redeploys the functions of an embedded :class:`FunctionHost`.

    ``start()`` brings up the host (dependencies, workers, queues), the HTTP endpoint
    (unless ``http_port`` is None) and the demo traffic (when ``traffic`` is True);
    ``close()`` stops them all.  The revision of a function is its deployment counter.
    """

    name = "local"

    def __init__(
        self,
        host: FunctionHost,
        clock: Clock,
        *,
        http_port: int | None = 0,
        traffic: bool = True,
        endpoint_limits: EndpointLimits | None = None,
    ) -> None:
        self.host = host
        self._clock = clock
        self._endpoint = (
            InvokeEndpoint(host, http_port, endpoint_limits) if http_port is not None else None
        )
        self._traffic = (
            TrafficDriver(host, {name: spec.traffic for name, spec in host.specs.items()})
            if traffic
            else None
        )
        self._applying = Lock()
        self._started = False
        self._traces = StoredTraces(host.tracing, LOCAL_LIMITS.timeout_max_s)
        self._callers: dict[str, frozenset[str]] = {}
        """Each function's callers in the traces of the last window observed."""

    @property
    def url(self) -> str | None:
        """Base URL of the HTTP endpoint, or None when it is off."""
        return self._endpoint.url if self._endpoint is not None else None

    @property
    def token(self) -> str | None:
        """The bearer token the HTTP endpoint requires, or None when it is off."""
        return self._endpoint.token if self._endpoint is not None else None

    def start_notes(self) -> list[str]:
        """Lines to show a person when the daemon starts: how to reach the endpoint."""
        return [self._endpoint.usage()] if self._endpoint is not None else []

    def start(self) -> None:
        """Start the host, the HTTP endpoint and the demo traffic."""
        self.host.start()
        if self._endpoint is not None:
            self._endpoint.start()
        if self._traffic is not None:
            self._traffic.start()
        self._started = True

    def close(self) -> None:
        """Stop traffic, endpoint and host (workers, queues, dependencies, records)."""
        if self._traffic is not None and self._started:
            self._traffic.stop()
        if self._endpoint is not None:
            self._endpoint.close()
        self.host.close()

    def __enter__(self) -> LocalProvider:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def ref(self, name: str) -> FunctionRef:
        """The reference of a local function."""
        return FunctionRef(provider=self.name, name=name)

    def targets(self) -> list[Target]:
        """Every function of the host with its live configuration."""
        found = []
        for name in self.host.functions():
            spec = self.host.specs[name]
            found.append(
                Target(
                    ref=self.ref(name),
                    config=self._live(name),
                    labels=dict(spec.labels),
                    limits=self._limits(name),
                    owner=spec.owner,
                    # no console: the host's endpoint answers only with its token
                )
            )
        return found

    def observe(
        self, targets: Sequence[Target], start: float, end: float
    ) -> Mapping[FunctionRef, WindowFacts]:
        """Facts over ``[start, end)`` for each local target, from two queries in all.

        Only invocations that ran at the target's current revision count: those that ran
        before a change are evidence of the past, not of the configuration in force.
        """
        current = {
            t.ref: t.config
            for t in targets
            if t.ref.provider == self.name and t.ref.name in self.host.specs
        }
        mine = list(current)
        if not mine:
            return {}
        names = [ref.name for ref in mine]
        revisions = {ref.name: config.revision for ref, config in current.items()}
        invocations: dict[str, list[InvocationRecord]] = defaultdict(list)
        for invocation in self.host.records.invocations(names, start, end):
            if str(invocation.revision) == revisions[invocation.function]:
                invocations[invocation.function].append(invocation)
        calls: dict[str, list[DependencyCallRecord]] = defaultdict(list)
        for call in self.host.records.dependency_calls(names, start, end):
            calls[call.function].append(call)
        stored = self._traces.window([n for n in names if invocations[n]], start, end)
        dependencies = self.host.dependency_specs
        windows = {
            ref: with_probe_facts(
                with_trace_facts(
                    window_facts(ref, start, end, invocations[ref.name], calls[ref.name]),
                    in_window(stored.get(ref.name, ()), start, end),
                ),
                self.host.prober,
                current[ref].memory_mb,
            )
            for ref in mine
        }
        windows = with_remedy_facts(windows, self.host.decomposition, start, end)
        traced = {name: in_window(stored.get(name, ()), start, end) for name in names}
        windows = {
            ref: with_memory_path_facts(
                with_distance_facts(w, current[ref], calls[ref.name], dependencies),
                traced[ref.name],
            )
            for ref, w in windows.items()
        }
        configs = {ref.name: config for ref, config in current.items()}
        windows, self._callers = with_call_facts(windows, configs, invocations, traced)
        return with_slow_dependencies(windows, invocations, calls, stored, self.host.records)

    def urgent_since(self, since: float) -> dict[FunctionRef, float]:
        """Functions with an invocation killed for memory since ``since``, and when the first ended.

        The host records each outcome as it happens, so a cycle can fix them early.
        """
        return {self.ref(name): end for name, end in self.host.records.first_ooms(since)}

    def read(self, ref: FunctionRef) -> FunctionConfig:
        """The live configuration of one function."""
        try:
            return self._live(ref.name)
        except UnknownFunctionError:
            raise ProviderError(f"no local function {ref.name!r}") from None

    def _live(self, name: str) -> FunctionConfig:
        """The deployed configuration, with the tracing switched on for a while (if any)."""
        config = self.host.config(name)
        tracing = self.host.tracing
        if tracing is None:
            return config
        return replace(config, tracing=tracing.switched(name, self.host.specs[name].tracing))

    def apply(
        self, target: Target, changes: Sequence[Change], *, reason: str = ""
    ) -> FunctionConfig:
        """Redeploy with the changes; live for every invocation that starts after return.

        Changes that are all live already return the live configuration unchanged.  A
        stale ``target.config.revision`` raises ConflictError; an unsupported knob or a
        value outside :data:`LOCAL_LIMITS` raises ProviderError.
        """
        with self._applying:
            live = self.read(target.ref)
            if all(live.get(change.knob) == change.after for change in changes):
                return live
            if any(change.knob is Knob.TRACING for change in changes):
                return self._switch(live, target.ref.name, changes)
            if target.config.revision != live.revision:
                raise ConflictError(
                    f"{target.ref}: revision {target.config.revision} is stale,"
                    f" live is {live.revision}"
                )
            limits = self._limits(target.ref.name)
            values = {change.knob: self._checked(live, change, limits) for change in changes}
            if values.get(Knob.FUSED) == 1:
                self._pair(target.ref.name)
            deployed = self.host.deploy(target.ref.name, live.with_changes(values))
        log.info(
            "applied",
            function=str(target.ref),
            changes=[change.describe() for change in changes],
            reason=reason,
            revision=deployed.revision,
        )
        return deployed

    def _switch(self, live: FunctionConfig, name: str, changes: Sequence[Change]) -> FunctionConfig:
        """Switch tracing on for a while (or off): not a deployment, the revision stays."""
        if len(changes) != 1 or self.host.tracing is None:
            raise ProviderError("tracing is switched alone, on a host that traces")
        rate = switch_tracing(self.host.tracing, name, self.host.specs[name].tracing, changes[0])
        log.info("tracing switched", function=name, change=changes[0].describe())
        return replace(live, tracing=rate)

    def _limits(self, name: str) -> Limits:
        """The host's limits under the function's own ceilings (``limits:`` in function.yaml)."""
        return self.host.specs[name].limits.applied(LOCAL_LIMITS)

    def _pair(self, name: str) -> None:
        """Name the caller a function is fused into: its one caller in the last window's traces."""
        callers = self._callers.get(name, frozenset())
        if len(callers) != 1:
            raise ProviderError(
                f"{name} has {len(callers)} callers in its traces: only a function with one"
                " caller is fused"
            )
        try:
            self.host.fusions.pair(name, next(iter(callers)))
        except ValueError as error:
            raise ProviderError(str(error)) from None

    def _checked(self, live: FunctionConfig, change: Change, limits: Limits) -> float | int:
        if change.knob not in _KNOBS:
            raise ProviderError(f"the local host has no {change.knob.value} setting")
        if change.knob is Knob.BATCH_SIZE and live.batch_size is None:
            raise ProviderError("batch_size needs an event source queue (none configured)")
        if not limits.allows(change.knob, change.after):
            low, high = limits.range(change.knob) or (None, None)
            raise ProviderError(
                f"{change.knob.value} {change.after} is outside the local limits {low}..{high}"
            )
        return round(change.after) if change.knob in INTEGER_KNOBS else float(change.after)
