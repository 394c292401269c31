"""Probes: an invocation killed for memory, re-run once at a higher limit to measure its need.

When an invocation runs out of memory, its trace shows at most what it held and the
allocation that failed; a function that allocates its work in parts, or in a way whose
size the code does not state (a list that grows, a dict of strings), is killed before
its trace can say how much it needed.  A probe answers the question the platform cannot:
the host re-runs the killed invocation's event once, in a separate worker at a higher
memory limit, and records the peak it reached.  That peak
(``extra.probe_peak_memory_mb``) is the strongest evidence of need that
:mod:`tuner.engine.sizing` reads.

From the out-of-memory kill until the probe has measured (and for at most ``wait_s``),
the window says so (``extra.probe_pending``), and the bundled oom rule waits for it: the
first memory change is sized from the measurement, never blind.  The measurement stays
evidence while the function keeps the memory it was killed at (for at most ``keep_s``).

A probe is bounded: one at a time on the host (the others wait their turn, one per
function, with the largest event seen), at most one per function and memory size every
``every_s``, never for an invocation that timed out or failed otherwise, never above
``max_mb`` (the host's cap), and within the function's own timeout.  Its result is
recorded, never returned: the caller already has its answer (the out-of-memory error),
and nested ``context.invoke`` calls from a probe fail without running, so a probe never
sets off other functions.  The handler does run a second time (as a platform's retry of
a failed invocation would): a host whose handlers must not run twice for one event turns
probes off (``probe: {enabled: false}`` in the local provider's settings).
"""

from __future__ import annotations

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
from tuner_handler.parts import payload_kb

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
    """At most one probe per function and memory size in this many seconds."""
    wait_s: float = Field(default=120.0, ge=1.0)
    """The longest a window says a probe is pending (``extra.probe_pending``) after the kill."""
    keep_s: float = Field(default=3600.0, ge=1.0)
    """How long a measurement stays evidence while the function keeps the memory it was
    killed at."""

    def limit_mb(self, killed_at_mb: int) -> int:
        """The probe's limit for an invocation killed at ``killed_at_mb``."""
        return min(self.max_mb, round(killed_at_mb * self.factor))

    def allows(self, memory_mb: int) -> bool:
        """True when an invocation killed at ``memory_mb`` may be probed."""
        return self.enabled and self.limit_mb(memory_mb) > memory_mb


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


@dataclass(frozen=True, slots=True)
class _Request:
    """An invocation killed for memory, waiting for its probe (or being probed)."""

    spec: WorkerSpec
    """The configuration it was killed at."""
    event: Any
    asked: float
    """When the first kill at this memory asked for it (the host clock)."""
    payload_kb: float | None


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
        self._asked: dict[tuple[str, int], float] = {}
        """(function, memory killed at) -> when its latest probe was asked for."""
        self._due: dict[tuple[str, int], float] = {}
        """(function, memory) -> when a window first showed a kill not yet asked about."""
        self._waiting: dict[str, _Request] = {}
        """One request per function, in the order they came."""
        self._current: _Request | None = None
        self._results: deque[ProbeResult] = deque(maxlen=KEPT)
        self._thread: threading.Thread | None = None
        self._process: WorkerProcess | None = None
        self._closed = False

    def after(self, spec: WorkerSpec, event: Any, execution: Execution) -> bool:
        """Ask for a probe of an invocation that just ended, if the policy allows one.

        True when a probe was asked for.  Only an invocation killed for memory below the
        probe limit is probed; the caller's result is not touched.  While a function's
        probe waits for its turn, a larger event killed at the same memory takes its place.
        """
        if execution.outcome != "oom" or not self.policy.allows(spec.memory_mb):
            return False
        now = self._clock.now()
        key = (spec.function, spec.memory_mb)
        request = _Request(spec, event, now, _payload_kb(event))
        with self._lock:
            if self._closed:
                return False
            waiting = self._waiting.get(spec.function)
            if waiting is not None and waiting.spec.memory_mb == spec.memory_mb:
                if (request.payload_kb or 0.0) > (waiting.payload_kb or 0.0):
                    self._waiting[spec.function] = replace(request, asked=waiting.asked)
                return False
            last = self._asked.get(key)
            if last is not None and now - last < self.policy.every_s:
                return False
            self._asked[key] = now
            self._waiting[spec.function] = request
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, daemon=True)
                self._thread.start()
        return True

    def _serve(self) -> None:
        """Run the waiting probes one after the other, until none is left."""
        while True:
            with self._lock:
                if self._closed or not self._waiting:
                    self._thread = None
                    return
                request = self._waiting.pop(next(iter(self._waiting)))
                self._current = request
            try:
                self._run(request)
            finally:
                with self._lock:
                    self._current = None

    def _run(self, request: _Request) -> None:
        """Run one probe to its end and keep what it measured."""
        original = request.spec
        spec = replace(original, memory_mb=self.policy.limit_mb(original.memory_mb))
        try:
            limit = self._limits(spec) if self._limits is not None else None
            process = WorkerProcess(spec, -1, limit, self._sandbox)
        except WorkerStartError as error:
            log.warning("probe did not start", function=spec.function, error=str(error))
            self._keep(request, spec, Execution(outcome="error", duration_ms=0.0))
            return
        with self._lock:
            self._process = process
            closed = self._closed
        try:
            if closed:
                return
            # A throwaway cache (nothing the probe sets is served) and no invoker (nested
            # calls fail without running).
            execution = process.invoke(request.event, TtlCache(self._clock, 0))
        finally:
            process.stop()
            with self._lock:
                self._process = None
        if not self._closed:
            self._keep(request, spec, execution)

    def _keep(self, request: _Request, spec: WorkerSpec, execution: Execution) -> None:
        peak = execution.peak_memory_mb  # the probe's limit when it ran out there too
        result = ProbeResult(
            function=spec.function,
            time=self._clock.now(),
            memory_mb=spec.memory_mb,
            killed_at_mb=request.spec.memory_mb,
            outcome=execution.outcome,
            peak_memory_mb=peak,
            payload_kb=request.payload_kb,
        )
        with self._lock:
            self._results.append(result)
        log.info(
            "probed an invocation killed for memory",
            function=spec.function,
            killed_at_mb=request.spec.memory_mb,
            probe_mb=spec.memory_mb,
            peak_mb=peak,
            outcome=execution.outcome,
        )

    def evidence(self, window: WindowFacts, memory_mb: int) -> dict[str, float]:
        """What probes tell about a window of a function now at ``memory_mb``.

        The probes that finished in the window, else the latest one of an invocation
        killed at ``memory_mb`` within ``keep_s``; and ``probe_pending`` while a probe of
        a kill at ``memory_mb`` waits or runs, for at most ``wait_s`` after the kill.
        """
        name, now, policy = window.ref.name, self._clock.now(), self.policy
        key = (name, memory_mb)
        with self._lock:
            mine = [r for r in self._results if r.function == name]
            since = [
                r.asked
                for r in (self._waiting.get(name), self._current)
                if r is not None and r.spec.function == name and r.spec.memory_mb == memory_mb
            ]
            if window.ooms and policy.allows(memory_mb) and key not in self._asked:
                since.append(self._due.setdefault(key, now))  # a kill about to ask for one
        pending = any(now - asked < policy.wait_s for asked in since)
        found = [r for r in mine if window.start <= r.time < window.end]
        if not found:
            kept = [r for r in mine if r.killed_at_mb == memory_mb and now - r.time < policy.keep_s]
            found = kept[-1:]
        facts = probe_facts(found)
        if pending:
            facts["probe_pending"] = 1.0
        return facts

    def wait(self, timeout_s: float) -> None:
        """Wait until no probe waits or runs (at most ``timeout_s``)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def close(self) -> None:
        """Stop a running probe; no probe starts afterwards."""
        with self._lock:
            self._closed = True
            self._waiting.clear()
            process, thread = self._process, self._thread
        if process is not None:
            process.kill()  # the probe's thread sees the pipe close and stops it
        if thread is not None:
            thread.join(5.0)


def probe_facts(results: list[ProbeResult]) -> dict[str, float]:
    """The probe evidence of some results: the highest peak, its limit and payload, the count.

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


def with_probe_facts(facts: WindowFacts, prober: Prober, memory_mb: int) -> WindowFacts:
    """The window's facts, of a function now at ``memory_mb``, with its probes' evidence."""
    found = prober.evidence(facts, memory_mb)
    return replace(facts, extra={**facts.extra, **found}) if found else facts


def _payload_kb(event: Any) -> float | None:
    try:
        return payload_kb(event)  # as tuner_handler measures it against split_above_kb
    except ValueError:
        return None
