"""Probes: an invocation killed for memory, re-run once at a higher limit to measure its need.

When an invocation runs out of memory, its trace shows at most what it held and the
allocation that failed; a function that allocates its work in parts is killed before the
last part, and the rest of its need stays unknown.  A probe answers the question the
platform cannot: the host re-runs the killed invocation's event once, in a separate worker
at a higher memory limit, and records the peak it reached.  That peak
(``extra.probe_peak_memory_mb``) is the strongest evidence of need that
:mod:`tuner.engine.sizing` reads.

A probe is bounded: one at a time on the host, at most one per function every
``every_s``, never for an invocation that timed out or failed otherwise, never above
``max_mb`` (the host's cap), and within the function's own timeout.  Its result is
recorded, never returned: the caller already has its answer (the out-of-memory error),
and nested ``context.invoke`` calls from a probe fail without running, so a probe never
sets off other functions.  The handler does run a second time (as a platform's retry of
a failed invocation would): a host whose handlers must not run twice for one event turns
probes off (``probe: {enabled: false}`` in the local provider's settings).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field

from tuner.domain.model import WindowFacts
from tuner.domain.ports import Clock
from tuner.providers.local.caching import TtlCache
from tuner.providers.local.executions import Execution, LimitFactory, WorkerSpec
from tuner.providers.local.sandboxing import Sandbox
from tuner.providers.local.worker_processes import WorkerProcess, WorkerStartError

log = structlog.get_logger(__name__)

KEPT = 256
"""Probe results kept in memory (the newest), for the window facts."""


class ProbePolicy(BaseModel):
    """When and how the local host probes an invocation killed for memory (``probe:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """Re-run an invocation killed for memory once at a higher limit (its result is dropped)."""
    factor: float = Field(default=8.0, gt=1.0, le=64.0)
    """The probe's limit as a multiple of the memory the invocation was killed at."""
    max_mb: int = Field(default=4096, ge=128, le=4096)
    """Never probe above this; at most the host's cap on memory (4,096 MB)."""
    every_s: float = Field(default=60.0, ge=1.0)
    """At most one probe per function in this many seconds."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe measured."""

    function: str
    time: float
    """When it finished (the host clock)."""
    memory_mb: int
    """The probe's limit."""
    killed_at_mb: int
    """The memory the original invocation was killed at."""
    outcome: str
    peak_memory_mb: float | None
    payload_kb: float | None
    """The size of the event, as JSON."""


class Prober:
    """Runs probes for the host in the background, one at a time, and keeps their results."""

    def __init__(
        self,
        policy: ProbePolicy,
        clock: Clock,
        limits: LimitFactory | None,
        sandbox: Sandbox,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._limits = limits
        self._sandbox = sandbox
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._results: deque[ProbeResult] = deque(maxlen=KEPT)
        self._running: threading.Thread | None = None
        self._process: WorkerProcess | None = None
        self._closed = False

    def after(self, spec: WorkerSpec, event: Any, execution: Execution) -> bool:
        """Start a probe of an invocation that just ended, if the policy allows one now.

        True when a probe started.  Only an invocation killed for memory below the probe
        limit is probed; the caller's result is not touched.
        """
        policy = self.policy
        if not policy.enabled or execution.outcome != "oom":
            return False
        limit = min(policy.max_mb, round(spec.memory_mb * policy.factor))
        if limit <= spec.memory_mb:
            return False  # already at the cap: a probe would learn nothing
        now = self._clock.now()
        with self._lock:
            last = self._last.get(spec.function)
            busy = self._running is not None and self._running.is_alive()
            if self._closed or busy or (last is not None and now - last < policy.every_s):
                return False
            self._last[spec.function] = now
            thread = threading.Thread(
                target=self._run, args=(spec, replace(spec, memory_mb=limit), event), daemon=True
            )
            self._running = thread
        thread.start()
        return True

    def _run(self, original: WorkerSpec, spec: WorkerSpec, event: Any) -> None:
        """Run one probe to its end and keep what it measured."""
        try:
            limit = self._limits(spec) if self._limits is not None else None
            process = WorkerProcess(spec, -1, limit, self._sandbox)
        except WorkerStartError as error:
            log.warning("probe did not start", function=spec.function, error=str(error))
            return
        with self._lock:
            self._process = process
            closed = self._closed
        try:
            if closed:
                return
            # A throwaway cache (nothing the probe sets is served) and no invoker (nested
            # calls fail without running).
            execution = process.invoke(event, TtlCache(self._clock, 0))
        finally:
            process.stop()
            with self._lock:
                self._process = None
        if closed or self._closed:
            return
        peak = execution.peak_memory_mb  # the probe's limit when it ran out there too
        result = ProbeResult(
            function=spec.function,
            time=self._clock.now(),
            memory_mb=spec.memory_mb,
            killed_at_mb=original.memory_mb,
            outcome=execution.outcome,
            peak_memory_mb=peak,
            payload_kb=_payload_kb(event),
        )
        with self._lock:
            self._results.append(result)
        log.info(
            "probed an invocation killed for memory",
            function=spec.function,
            killed_at_mb=original.memory_mb,
            probe_mb=spec.memory_mb,
            peak_mb=peak,
            outcome=execution.outcome,
        )

    def results(self, function: str, start: float, end: float) -> list[ProbeResult]:
        """Probes of a function that finished in ``[start, end)``."""
        with self._lock:
            return [r for r in self._results if r.function == function and start <= r.time < end]

    def wait(self, timeout_s: float) -> None:
        """Wait for the running probe, if any, to finish."""
        with self._lock:
            thread = self._running
        if thread is not None:
            thread.join(timeout_s)

    def close(self) -> None:
        """Stop a running probe; no probe starts afterwards."""
        with self._lock:
            self._closed = True
            process, thread = self._process, self._running
        if process is not None:
            process.kill()  # the probe's thread sees the pipe close and stops it
        if thread is not None:
            thread.join(5.0)


def probe_facts(results: list[ProbeResult]) -> dict[str, float]:
    """The window's probe evidence: the highest peak, its limit and payload size, and the count.

    A probe stopped at its timeout is left out: it measured the need only up to where it
    was stopped.
    """
    measured = [r for r in results if r.peak_memory_mb is not None and r.outcome != "timeout"]
    if not measured:
        return {}
    best = max(measured, key=lambda r: r.peak_memory_mb or 0.0)
    facts = {
        "probe_peak_memory_mb": float(best.peak_memory_mb or 0.0),
        "probe_memory_mb": float(best.memory_mb),
        "probes": float(len(results)),
    }
    if best.payload_kb is not None:
        facts["probe_payload_kb"] = best.payload_kb
    return facts


def with_probe_facts(facts: WindowFacts, prober: Prober) -> WindowFacts:
    """The window's facts with its probes' evidence added to ``extra``."""
    found = probe_facts(prober.results(facts.ref.name, facts.start, facts.end))
    return replace(facts, extra={**facts.extra, **found}) if found else facts


def _payload_kb(event: Any) -> float | None:
    try:
        return len(json.dumps(event).encode()) / 1024.0
    except (TypeError, ValueError):
        return None
