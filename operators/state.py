"""What the operator process knows: wired policies, their problems, leadership, wake-ups.

Kopf handlers are thin: they call these methods (blocking ones in a worker thread).
Only the leader runs cycles and writes status; every replica keeps its policies wired,
so a standby can take over at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from operators import status
from operators.leadership import LeaseElector
from operators.runners import PolicyRunner, build_runner, forget
from operators.settings import GROUP, PLURAL, VERSION, OperatorSettings
from tuner.domain.errors import ConfigError, ProviderError
from tuner.providers.kubernetes import events
from tuner.providers.kubernetes.api import KubeApi, NotFoundError
from tuner.web.metrics import Metrics

log = structlog.get_logger(__name__)

PolicyKey = tuple[str, str]
"""(namespace, name) of a TuningPolicy."""
StatusMaker = Callable[[dict[str, Any]], dict[str, Any]]
"""Makes a new status from the current one."""


def policy_path(namespace: str, name: str) -> str:
    """The API path of a TuningPolicy."""
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"


@dataclass
class OperatorState:
    """The shared state of one operator replica (one per process)."""

    settings: OperatorSettings
    api: KubeApi
    elector: LeaseElector
    runners: dict[PolicyKey, PolicyRunner] = field(default_factory=dict)
    problems: dict[PolicyKey, str] = field(default_factory=dict)
    reported: dict[PolicyKey, str] = field(default_factory=dict)
    wakers: dict[PolicyKey, asyncio.Event] = field(default_factory=dict)
    seen_ooms: set[tuple[str, str, int, float]] = field(default_factory=set)
    """OOM kills already acted on: (pod uid, container, restart count, time)."""
    cycles: int = 0
    metrics: Metrics = field(default_factory=Metrics)
    """Counted by every policy's tuner; served at ``/metrics``."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _policy_locks: dict[PolicyKey, threading.Lock] = field(default_factory=dict)
    """Held while a policy cycles or is rewired: one at a time per policy."""

    @classmethod
    def create(cls, settings: OperatorSettings) -> OperatorState:
        """Connect to the API and prepare the lease elector."""
        api = KubeApi(settings.api_url)
        elector = LeaseElector(
            api,
            settings.lease_namespace,
            settings.lease_name,
            settings.identity,
            settings.lease_duration_s,
        )
        return cls(settings=settings, api=api, elector=elector)

    # wiring policies (every replica)

    def configure(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        """(Re)wire a policy from its spec; an invalid policy is remembered as a problem.

        The old tuner is closed first, after any cycle of it has finished, so two tuners
        never share the policy's store.
        """
        key = (namespace, name)
        with self._policy_lock(key):
            self._drop_runner(key)
            try:
                runner = build_runner(
                    self.settings,
                    self.api,
                    namespace,
                    name,
                    spec,
                    is_leader=lambda: self.elector.is_leader,
                    metrics=self.metrics,
                )
            except ConfigError as exc:
                log.warning("policy_invalid", policy=f"{namespace}/{name}", problems=str(exc))
                with self._lock:
                    self.problems[key] = str(exc)
                return
            with self._lock:
                self.problems.pop(key, None)
                self.runners[key] = runner

    def remove(self, namespace: str, name: str) -> None:
        """Forget a deleted policy and its files."""
        key = (namespace, name)
        with self._policy_lock(key):
            self._drop_runner(key)
            with self._lock:
                self.problems.pop(key, None)
                self.reported.pop(key, None)
            forget(self.settings, namespace, name)

    def _policy_lock(self, key: PolicyKey) -> threading.Lock:
        with self._lock:
            return self._policy_locks.setdefault(key, threading.Lock())

    def _drop_runner(self, key: PolicyKey) -> None:
        with self._lock:
            old = self.runners.pop(key, None)
        if old is not None:
            old.close()

    def wired(self) -> list[tuple[PolicyKey, PolicyRunner]]:
        """The wired policies and their runners, sorted by key (a snapshot)."""
        with self._lock:
            return sorted(self.runners.items(), key=lambda item: item[0])

    def interval_s(self, key: PolicyKey) -> float:
        """Seconds between two cycles of a policy."""
        runner = self.runners.get(key)
        return runner.interval_s if runner else self.settings.interval_s

    # acting (the leader only)

    def step(self, namespace: str, name: str) -> None:
        """Run one cycle for a policy and write its status, or report why it cannot run."""
        key = (namespace, name)
        with self._policy_lock(key):
            with self._lock:
                problem = self.problems.get(key)
                runner = self.runners.get(key)
            if problem is not None:
                self._report_problem(key, problem)
            elif runner is not None:
                if runner.term != self.elector.term:
                    runner.take_over(self.elector.term)  # a new leader: the cluster's state first
                report = runner.cycle()
                self.cycles += 1
                self._patch_status(
                    key,
                    lambda current: status.cycle_status(
                        current, report, runner.spec.mode, self.settings.identity
                    ),
                )

    def _report_problem(self, key: PolicyKey, problem: str) -> None:
        if self.reported.get(key) == problem:
            return
        now = time.time()
        policy = self._patch_status(key, lambda old: status.invalid_status(old, problem, now))
        if policy is None:
            return
        event = events.object_event(
            f"{GROUP}/{VERSION}",
            "TuningPolicy",
            policy,
            reason="InvalidPolicy",
            message=problem,
            now=now,
            type="Warning",
        )
        try:
            self.api.create(events.events_path(key[0]), event)
        except ProviderError as exc:
            log.warning("event_not_recorded", error=str(exc))
        self.reported[key] = problem

    def _patch_status(self, key: PolicyKey, make: StatusMaker) -> dict[str, Any] | None:
        path = policy_path(*key)
        try:
            current = self.api.get(path).get("status") or {}
            patched = self.api.patch(f"{path}/status", {"status": make(current)})
        except NotFoundError:
            return None  # deleted meanwhile
        return patched

    # waking (event-driven cycles)

    def waker(self, key: PolicyKey) -> asyncio.Event:
        """The event that ends a policy's wait between cycles early."""
        return self.wakers.setdefault(key, asyncio.Event())

    def wake_namespace(self, namespace: str) -> int:
        """Wake every policy of a namespace now; returns how many were woken."""
        woken = [event for (ns, _), event in self.wakers.items() if ns == namespace]
        for event in woken:
            event.set()
        return len(woken)

    def close(self) -> None:
        """Give up leadership and close every policy's tuner."""
        self.elector.release()
        for key in list(self.runners):
            with self._policy_lock(key):
                self._drop_runner(key)
        self.api.close()
