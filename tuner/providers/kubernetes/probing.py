"""Probes: an OOM-killed Deployment's pod, copied once at a higher limit to measure its need.

Kubernetes keeps only that a container was killed at its limit; how much more it wanted
stays unknown, and sizing from that is blind (double and see).  A probe answers the
question: when a Deployment's container is OOM-killed and probes are on, tuner creates
one pod from the Deployment's pod template with that container's memory raised
(``factor`` times, at most ``max_mb``; see :mod:`tuner.providers.kubernetes.probe_pods`).
The probe serves a share of the workload's real traffic for ``for`` and then ends: its
``activeDeadlineSeconds`` stops it even if tuner is gone, and tuner deletes it when the
time is up.  Its peak working set (from the provider's memory source) is the measured
need that :mod:`tuner.engine.sizing` reads as ``extra.probe_peak_memory_mb`` at
``extra.probe_memory_mb``; a probe that is OOM-killed too reports its limit, a lower bound.

Bounded: one probe per Deployment at a time, none within ``for`` after the last one
ended, never a second one at a limit already probed, at most ``max_running`` at once,
never above ``max_mb``.  While a probe runs and has not yet shown more than the limit the
Deployment was killed at, the window says so (``extra.probe_pending``): a rule that waits
for it sizes from the measurement, in one step.  Knative Services are
not probed: a Revision's pods are created and routed by Knative (its queue-proxy and
activator), and a bare pod copied from the template would receive no traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

import structlog

from tuner.domain.errors import ProviderError
from tuner.domain.model import WindowFacts
from tuner.providers.kubernetes.api import ForbiddenError, JsonObject, KubeApi, NotFoundError
from tuner.providers.kubernetes.probe_pods import (
    ProbePolicy,
    has_ended,
    probe_pod,
    probed_deployment,
    ran_out_of_memory,
)
from tuner.providers.kubernetes.workloads import DEPLOYMENT, WorkloadKind, dig, read_config

log = structlog.get_logger(__name__)

RBAC_HINT = "grant the provider's service account create, delete on pods in the namespace"
KNATIVE_REASON = (
    "Knative routes a Service's traffic to its Revisions' pods through its activator and "
    "queue-proxy; a bare copy of the pod would receive none"
)


@dataclass(frozen=True, slots=True)
class ProbeRun:
    """One probe pod of a Deployment, and what it measured so far."""

    deployment: str
    pod: str
    container: str
    memory_mb: int
    """The probe's memory limit."""
    killed_at_mb: int
    """The limit the Deployment's container was killed at."""
    started: float
    deadline: float
    peak_mb: float | None = None
    """The highest working set seen so far."""
    oom: bool = False
    """True when the probe was OOM-killed too: its need is at least its limit."""
    ended: float | None = None

    @property
    def measured_mb(self) -> float | None:
        """The need measured: the peak, or the probe's limit where it ran out there too."""
        return float(self.memory_mb) if self.oom else self.peak_mb

    @property
    def pending(self) -> bool:
        """True while the probe runs and has not yet shown more than the killed limit."""
        measured = self.measured_mb
        return self.ended is None and (measured is None or measured <= self.killed_at_mb)


class Prober:
    """Starts, watches, ends and sweeps the probe pods of one namespace's Deployments."""

    def __init__(
        self,
        api: Callable[[], KubeApi],
        namespace: str,
        policy: ProbePolicy,
        *,
        cap_mb: int | None = None,
    ) -> None:
        """Probe in ``namespace`` through the client ``api()`` returns, as ``policy`` allows.

        ``cap_mb`` is the most memory tuner may give a workload; no probe gets more.
        """
        self.policy = policy
        self._cap_mb = cap_mb
        self._api = api
        self._namespace = namespace
        self._runs: dict[str, ProbeRun] = {}
        """The latest probe of each Deployment, by name."""
        self._attempts: dict[str, float] = {}
        """When a probe of each Deployment was last tried (created or refused)."""
        self._unprobed: set[str] = set()
        """Workloads already reported as not probed (Knative Services)."""

    @property
    def _pods_path(self) -> str:
        return f"/api/v1/namespaces/{self._namespace}/pods"

    def sweep(self, pods: Iterable[JsonObject], deployments: Iterable[str]) -> list[JsonObject]:
        """Delete the probe pods of these Deployments that this prober did not start.

        They are left from an earlier run of tuner (or a former leader), and what they
        measured went with it.  Returns the probe pods that remain.
        """
        managed = set(deployments)
        mine = {run.pod for run in self._runs.values()}
        remaining, swept = [], []
        for pod in pods:
            name = dig(pod, "metadata", "name") or ""
            leftover = probed_deployment(pod) in managed and name not in mine
            if leftover and self._delete(name):
                swept.append(name)
            else:
                remaining.append(pod)
        if swept:
            log.info("probe_pods_swept", namespace=self._namespace, pods=swept)
        return remaining

    def update(
        self, pods: Iterable[JsonObject], memory: Mapping[tuple[str, str], float], now: float
    ) -> None:
        """Read each probe's peak and state; end the probes whose time is up or that stopped."""
        by_name = {dig(p, "metadata", "name"): p for p in pods}
        for name, run in list(self._runs.items()):
            peak = memory.get((run.pod, run.container))
            if peak is not None:
                run = replace(run, peak_mb=max(peak, run.peak_mb or 0.0))
            if run.ended is None:
                run = self._follow(run, by_name.get(run.pod), now)
            self._runs[name] = run

    def _follow(self, run: ProbeRun, pod: JsonObject | None, now: float) -> ProbeRun:
        """The run after looking at its pod: OOM-killed, stopped, or out of time."""
        if pod is None:
            log.info("probe_pod_gone", deployment=run.deployment, pod=run.pod)
            return replace(run, ended=now)
        oom = ran_out_of_memory(pod, run.container)
        if oom or has_ended(pod) or now >= run.deadline:
            self._delete(run.pod)
            log.info(
                "probe_ended",
                deployment=run.deployment,
                pod=run.pod,
                memory_mb=run.memory_mb,
                peak_mb=run.peak_mb,
                oom=oom,
            )
            return replace(run, oom=oom, ended=now)
        return run

    def start(
        self, deployment: JsonObject, container: str, killed_at_mb: int, now: float
    ) -> ProbeRun | None:
        """Start a probe of a Deployment whose container was OOM-killed, if the policy allows."""
        policy = self.policy
        name = str(dig(deployment, "metadata", "name"))
        if not policy.enabled or not self._may_start(name, killed_at_mb, now):
            return None
        memory_mb = min(policy.memory_mb(killed_at_mb), self._cap_mb or policy.max_mb)
        if memory_mb <= killed_at_mb:
            log.info("probe_at_cap", deployment=name, memory_mb=killed_at_mb, max_mb=memory_mb)
            return None
        reason = (
            f"container {container} was OOM-killed at {killed_at_mb} MB; "
            f"measuring its need at {memory_mb} MB for {policy.for_s:g}s"
        )
        body = probe_pod(
            deployment, container, memory_mb, now=now, for_s=policy.for_s, reason=reason
        )
        self._attempts[name] = now
        created = self._call("probe_not_started", self._pods_path, body)
        if created is None:
            return None
        run = ProbeRun(
            deployment=name,
            pod=str(dig(created, "metadata", "name") or body["metadata"]["name"]),
            container=container,
            memory_mb=memory_mb,
            killed_at_mb=killed_at_mb,
            started=now,
            deadline=now + policy.for_s,
        )
        self._runs[name] = run
        log.info("probe_started", deployment=name, pod=run.pod, reason=reason)
        return run

    def _may_start(self, name: str, killed_at_mb: int, now: float) -> bool:
        """No probe of this Deployment runs, ended within ``for`` or measured this limit
        already, and there is room for one more."""
        wait = self.policy.for_s
        last = self._runs.get(name)
        if last is not None and (
            last.ended is None or now - last.ended < wait or last.killed_at_mb == killed_at_mb
        ):
            return False
        tried = self._attempts.get(name)
        if tried is not None and now - tried < wait:
            return False
        running = sum(1 for r in self._runs.values() if r.ended is None)
        return running < self.policy.max_running

    def facts(self, deployment: str, start: float, memory_mb: int) -> dict[str, float]:
        """The evidence of a Deployment's latest probe for a window starting at ``start``.

        The window in which tuner starts a probe reports it as pending.  A probe's result
        stays evidence while the Deployment keeps the limit it was probed from, and for
        ``for`` after the probe ended, so a decision taken later (after a rule's cooldown,
        or by a person in recommend mode) still rests on it.
        """
        run = self._runs.get(deployment)
        if run is None:
            return {}
        current = run.ended is None or run.killed_at_mb == memory_mb
        if not current and run.ended is not None and run.ended + self.policy.for_s < start:
            return {}
        facts = {"probes": 1.0}
        measured = run.measured_mb
        if measured is not None:
            facts["probe_peak_memory_mb"] = measured
            facts["probe_memory_mb"] = float(run.memory_mb)
        if run.pending:
            facts["probe_pending"] = 1.0
        return facts

    def with_probe(
        self, kind: WorkloadKind, obj: JsonObject, container: str, facts: WindowFacts, now: float
    ) -> WindowFacts:
        """A workload's window facts with its probe's evidence; starts a probe after an OOM."""
        name = str(dig(obj, "metadata", "name"))
        if kind is not DEPLOYMENT:
            if facts.ooms and self.policy.enabled and name not in self._unprobed:
                self._unprobed.add(name)
                log.info("probe_unsupported", kind=kind.kind, name=name, reason=KNATIVE_REASON)
            return facts
        config = read_config(kind, obj, container)
        if config is None:
            return facts
        if facts.ooms:
            self.start(obj, container, int(config.memory_mb), now)
        found = self.facts(name, facts.start, int(config.memory_mb))
        return replace(facts, extra={**facts.extra, **found}) if found else facts

    def close(self, now: float) -> None:
        """Delete the probe pods still running (their results would be lost with tuner)."""
        for name, run in list(self._runs.items()):
            if run.ended is None:
                self._delete(run.pod)
                self._runs[name] = replace(run, ended=now)

    def _delete(self, pod: str) -> bool:
        """Delete a probe pod; False when it could not be (already gone counts as done)."""
        return self._call("probe_not_deleted", f"{self._pods_path}/{pod}") is not None

    def _call(self, failed: str, path: str, body: JsonObject | None = None) -> JsonObject | None:
        """Create ``body`` at ``path``, or delete ``path`` without a body; None when refused.

        A refusal is logged as ``failed`` (with what to grant, for a 403); deleting what
        is already gone is done.
        """
        api = self._api()
        try:
            return api.create(path, body) if body is not None else api.delete(path)
        except ProviderError as exc:
            if body is None and isinstance(exc, NotFoundError):
                return {}
            hint = RBAC_HINT if isinstance(exc, ForbiddenError) else None
            log.warning(failed, path=path, error=str(exc), hint=hint)
            return None
