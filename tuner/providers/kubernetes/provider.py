"""The Kubernetes provider: lists, observes and changes Deployments and Knative Services."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import structlog

from tuner.domain.errors import ApplyFailedError, ConflictError, ProviderError
from tuner.domain.model import Change, FunctionConfig, FunctionRef, Limits, Target, WindowFacts
from tuner.domain.ports import Clock
from tuner.providers.kubernetes import (
    disruption,
    events,
    observations,
    patching,
    rollouts,
    signals,
    timing,
    usage,
    workloads,
)
from tuner.providers.kubernetes.api import ForbiddenError, JsonObject, KubeApi, NotFoundError
from tuner.providers.kubernetes.distance import Distances
from tuner.providers.kubernetes.probe_pods import probed_deployment
from tuner.providers.kubernetes.probing import Prober
from tuner.providers.kubernetes.settings import Settings
from tuner.providers.kubernetes.workloads import KINDS, WorkloadKind, dig
from tuner.providers.prometheus import ContainerQueries, PrometheusClient
from tuner.trace.topology import Topology

log = structlog.get_logger(__name__)

ROLLOUT_POLL_S = 0.2


class KubernetesProvider:
    """Implements :class:`tuner.domain.ports.Provider` for workloads in one namespace."""

    def __init__(self, settings: Settings, *, clock: Clock) -> None:
        """Configure the provider; the API connection is opened by :meth:`start`."""
        self.settings = settings
        self.name = settings.name
        self._clock = clock
        self._api: KubeApi | None = None
        self._kinds = [KINDS[short] for short in settings.kinds]
        self._missing_kinds: set[str] = set()
        self._prometheus = (
            ContainerQueries(PrometheusClient(settings.prometheus_url), settings.latency_metric)
            if settings.prometheus_url
            else None
        )
        self.prober = Prober(
            lambda: self.api, settings.namespace, settings.probe, cap_mb=settings.memory_max_mb
        )
        self._swept = not settings.probe.enabled
        self._distances = (
            Distances(
                PrometheusClient(settings.prometheus_url),
                settings.dependency_metric,
                settings.dependency_label,
                settings.latency_metric or "",
            )
            if settings.prometheus_url and settings.dependency_metric
            else None
        )

    # lifecycle

    def start(self) -> None:
        """Open the API connection (idempotent)."""
        if self._api is None:
            self._api = KubeApi(self.settings.api_url, timeout_s=self.settings.request_timeout_s)
            log.info("kubernetes_connected", host=self._api.host, namespace=self.settings.namespace)

    def close(self) -> None:
        """Delete running probe pods and close the API connection."""
        if self._api is not None:
            self.prober.close(self._clock.now())
            self._api.close()
            self._api = None

    @property
    def api(self) -> KubeApi:
        """The open API client (opened on first use)."""
        self.start()
        assert self._api is not None
        return self._api

    # TargetSource

    def targets(self) -> Sequence[Target]:
        """Every selected Deployment and Knative Service with a memory setting."""
        found: list[Target] = []
        for kind in self._kinds:
            for obj in self._list_workloads(kind):
                target = self._target(kind, obj)
                if target is not None:
                    found.append(target)
        return found

    def _list_workloads(self, kind: WorkloadKind) -> list[JsonObject]:
        selector = self.settings.selector
        try:
            path = kind.collection_path(self.settings.namespace)
            items = self.api.list(path, selector.to_query())
        except (NotFoundError, ForbiddenError) as exc:
            if kind.required and isinstance(exc, ForbiddenError):
                raise
            self._kind_unavailable(kind, exc)
            return []
        self._missing_kinds.discard(kind.short)
        return [
            obj
            for obj in items
            if selector.matches(dig(obj, "metadata", "labels") or {})
            and not (kind is workloads.DEPLOYMENT and workloads.is_knative_managed(obj))
        ]

    def _kind_unavailable(self, kind: WorkloadKind, exc: ProviderError) -> None:
        """Skip a kind the cluster does not serve or does not grant, with one warning."""
        if kind.short in self._missing_kinds:
            return
        self._missing_kinds.add(kind.short)
        why = "not granted" if isinstance(exc, ForbiddenError) else "not installed"
        log.warning(
            "workload_kind_unavailable",
            kind=kind.kind,
            api=kind.api_version,
            namespace=self.settings.namespace,
            reason=why,
            error=str(exc),
            hint=f"{kind.kind}s are not tuned; remove '{kind.short}' from kinds to silence this",
        )

    def _target(self, kind: WorkloadKind, obj: JsonObject) -> Target | None:
        ref = workloads.ref_for(self.name, kind, obj)
        container = workloads.container_name(kind, obj, self.settings.container)
        config = workloads.read_config(kind, obj, container) if container else None
        if config is None:
            log.warning("workload_without_memory_setting", ref=str(ref), container=container)
            return None
        labels: Mapping[str, str] = dig(obj, "metadata", "labels") or {}
        return Target(
            ref=ref,
            config=config,
            labels=dict(labels),
            limits=self._limits(),
            owner=labels.get(workloads.OWNER_LABEL, ""),
        )

    def _limits(self) -> Limits:
        return Limits(
            memory_min_mb=self.settings.memory_min_mb,
            memory_max_mb=self.settings.memory_max_mb,
            concurrency_max=self.settings.concurrency_max,
            cpu_scales_with_memory=False,
        )

    # MetricSource

    def observe(
        self, targets: Sequence[Target], start: float, end: float
    ) -> Mapping[FunctionRef, WindowFacts]:
        """OOM kills, restarts and evictions from pods and Events, memory and latency from metrics.

        One list of workloads per kind, one of pods, one of Events and one memory query
        cover the fleet.
        """
        mine = [t for t in targets if t.ref.provider == self.name]
        if not mine:
            return {}
        namespace = self.settings.namespace
        live = {
            workloads.ref_for(self.name, kind, obj): (kind, obj)
            for kind in self._kinds
            for obj in self._list_workloads(kind)
        }
        pods = self.api.list(f"/api/v1/namespaces/{namespace}/pods")
        probes = [p for p in pods if probed_deployment(p)]
        pods = [p for p in pods if not probed_deployment(p)]  # a probe is not the workload's
        if not self._swept:  # in the first cycle: only an operator's acting replica cycles
            self._swept = True
            managed = [
                str(dig(obj, "metadata", "name"))
                for kind, obj in live.values()
                if kind is workloads.DEPLOYMENT
            ]
            probes = self.prober.sweep(probes, managed)
        memory = self._memory_usage(namespace, start, end)
        cluster_events = self._events(namespace)
        now = self._clock.now()
        self.prober.update(probes, memory, now)
        if self._distances is not None:
            self._distances.begin(self.api, namespace)
        facts: dict[FunctionRef, WindowFacts] = {}
        for target in mine:
            if target.ref not in live:
                continue  # deleted or no longer selected since targets() ran
            kind, obj = live[target.ref]
            container = workloads.container_name(kind, obj, self.settings.container) or ""
            own = signals.pods_of(pods, kind.pod_labels(obj))
            config = workloads.read_config(kind, obj, container) if container else None
            # failures are evidence about the size they happened at: the one in force only
            at_size = signals.in_force(own, container, config.memory_mb) if config else own
            seen = observations.observe(at_size, cluster_events, container, start, end)
            window = self._facts(target.ref, own, seen, container, memory, start, end)
            if self._distances is not None:
                window = self._distances.add(window, own, namespace)
            facts[target.ref] = self.prober.with_probe(kind, obj, container, window, now)
        return facts

    def _memory_usage(
        self, namespace: str, start: float, end: float
    ) -> dict[tuple[str, str], float]:
        source = self.settings.memory_source
        if source == "auto":
            source = "prometheus" if self._prometheus else "metrics-api"
        if source == "prometheus" and self._prometheus is not None:
            return self._prometheus.peak_memory_mb(namespace, start, end)
        if source == "metrics-api":
            return usage.metrics_api_usage(self.api, namespace)
        return {}

    def _events(self, namespace: str) -> list[JsonObject]:
        """The namespace's Events (OOM kills, back-offs, evictions); none when not granted."""
        try:
            return self.api.list(events.events_path(namespace))
        except (NotFoundError, ForbiddenError) as exc:
            if "events" not in self._missing_kinds:
                self._missing_kinds.add("events")
                log.warning("events_unreadable", namespace=namespace, error=str(exc))
            return []

    def _facts(
        self,
        ref: FunctionRef,
        pods: Sequence[JsonObject],
        seen: observations.PodSignals,
        container: str,
        memory: Mapping[tuple[str, str], float],
        start: float,
        end: float,
    ) -> WindowFacts:
        names = [dig(p, "metadata", "name") or "" for p in pods]
        peaks = [memory[(n, container)] for n in names if (n, container) in memory]
        latency = (
            self._prometheus.latency(self.settings.namespace, names, start, end)
            if self._prometheus
            else None
        )
        return WindowFacts(
            ref=ref,
            start=start,
            end=end,
            invocations=observations.invocations(latency, pods),
            ooms=seen.ooms,
            peak_memory_mb=max(peaks) if peaks else None,
            duration_p50_ms=latency.p50_ms if latency else None,
            duration_p95_ms=latency.p95_ms if latency else None,
            duration_p99_ms=latency.p99_ms if latency else None,
            extra={
                "restarts": float(signals.restart_count(pods, container)),
                "pods": float(len(pods)),
                **seen.extra,
            },
            evidence=seen.evidence,
        )

    def timing_topology(self, start: float, end: float) -> Topology:
        """Who calls whom in the namespace, mined from request rates in Prometheus.

        Needs ``prometheus_url`` and ``latency_metric``; nodes are workload names.
        """
        if self._prometheus is None or not self.settings.latency_metric:
            raise ProviderError(
                f"provider {self.name!r}: a timing topology needs prometheus_url and "
                "latency_metric (a request-duration histogram)"
            )
        namespace = self.settings.namespace
        pods = self.api.list(f"/api/v1/namespaces/{namespace}/pods")
        pods_of = {
            dig(obj, "metadata", "name"): [
                dig(p, "metadata", "name") for p in signals.pods_of(pods, kind.pod_labels(obj))
            ]
            for kind in self._kinds
            for obj in self._list_workloads(kind)
        }
        return timing.mined_topology(
            self._prometheus, namespace, pods_of, start, end, self.settings.timing_step_s
        )

    # Actuator

    def read(self, ref: FunctionRef) -> FunctionConfig:
        """The live configuration of one workload."""
        kind, namespace, name = workloads.parse_ref(ref)
        obj = self.api.get(kind.object_path(namespace, name))
        return self._config(ref, obj)

    def _config(self, ref: FunctionRef, obj: JsonObject) -> FunctionConfig:
        kind, _, _ = workloads.parse_ref(ref)
        container = workloads.container_name(kind, obj, self.settings.container)
        config = workloads.read_config(kind, obj, container) if container else None
        if config is None:
            raise ProviderError(f"{ref}: container {container!r} has no memory setting")
        return config

    def apply(
        self, target: Target, changes: Sequence[Change], *, reason: str = ""
    ) -> FunctionConfig:
        """Patch the workload, record an annotation and an Event, and wait for the rollout.

        The plan is checked against the live object first: when a knob no longer has the
        value the change was planned from, :class:`ConflictError` tells the caller to
        re-plan.  A 409 from the API (someone wrote between read and patch) is retried up
        to ``conflict_retries`` times while the plan still holds.
        """
        kind, namespace, name = workloads.parse_ref(target.ref)
        path = kind.object_path(namespace, name)
        for attempt in range(self.settings.conflict_retries + 1):
            obj = self.api.get(path)
            live = self._config(target.ref, obj)
            if all(live.get(c.knob) == c.after for c in changes):
                log.info("apply_already_live", ref=str(target.ref))
                return live
            stale = [c for c in changes if live.get(c.knob) != c.before]
            if stale:
                raise ConflictError(
                    f"{target.ref} changed meanwhile: "
                    + ", ".join(
                        f"{c.knob.value} is {live.get(c.knob)}, planned from {c.before}"
                        for c in stale
                    )
                )
            disruption.check_disruption(
                kind,
                obj,
                self._budgets(namespace),
                allow_single_replica_restart=self.settings.allow_single_replica_restart,
            )
            container = workloads.container_name(kind, obj, self.settings.container) or ""
            note = patching.change_annotation(changes, reason, self._clock.now())
            far = self._distances.far.get(target.ref) if self._distances else None
            body = patching.change_patch(kind, obj, container, changes, note, far)
            try:
                patched = self.api.patch(path, body)
            except ConflictError:
                log.info("apply_conflict_retry", ref=str(target.ref), attempt=attempt + 1)
                continue
            self._record_event(kind, patched, changes, reason)
            return self._config(target.ref, self._wait_rolled_out(kind, path, patched))
        raise ConflictError(
            f"{target.ref}: still conflicting after {self.settings.conflict_retries + 1} attempts"
        )

    def _budgets(self, namespace: str) -> list[JsonObject]:
        try:
            return self.api.list(f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets")
        except NotFoundError:
            return []

    def _record_event(
        self, kind: WorkloadKind, obj: JsonObject, changes: Sequence[Change], reason: str
    ) -> None:
        message = "tuner changed " + ", ".join(c.describe() for c in changes)
        if reason:
            message += f": {reason}"
        event = events.change_event(kind, obj, message, self._clock.now())
        try:
            self.api.create(events.events_path(event["metadata"]["namespace"]), event)
        except ProviderError as exc:  # the change is live; a lost event must not undo that
            log.warning("event_not_recorded", error=str(exc))

    def _wait_rolled_out(self, kind: WorkloadKind, path: str, obj: JsonObject) -> JsonObject:
        timeout = self.settings.rollout_timeout_s
        if timeout <= 0:
            return obj
        deadline = time.monotonic() + timeout
        while not rollouts.rolled_out(kind, obj):
            if time.monotonic() >= deadline:
                name = dig(obj, "metadata", "name")
                raise ApplyFailedError(f"{kind.kind} {name}: rollout unfinished after {timeout:g}s")
            time.sleep(ROLLOUT_POLL_S)
            obj = self.api.get(path)
        return obj
