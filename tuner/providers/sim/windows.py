"""One simulated window of one function: what happened, and what a provider would report.

Invocations are not simulated one by one: the counts, the largest payloads and the
largest durations are drawn from their exact distributions (the maximum of ``n`` uniform
draws is ``v ** (1 / n)``), so a window costs the same for ten invocations as for a million.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tuner.domain.model import DependencyFacts, FunctionRef, WindowFacts
from tuner.providers.sim.workloads import (
    DURATION_SPREAD,
    MAX_MEMORY_MB,
    PRICE_GB_S,
    PRICE_REQUEST,
    Workload,
)

DRAWS = 8
"""Uniform numbers one window of one function consumes, whatever happens in it."""
PROBE_MEMORY_MB = MAX_MEMORY_MB
"""A probe re-runs a killed invocation at Lambda's largest memory size."""
_A, _B, _C = DURATION_SPREAD


@dataclass(frozen=True, slots=True)
class DependencyState:
    """How a dependency behaves during a window."""

    error_rate: float = 0.0
    latency_ms: float = 40.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """The truth of a window, for scoring: what real traffic saw and paid."""

    invocations: int
    ooms: int
    timeouts: int
    cost: float
    peak_mb: float | None
    p90_mb: float | None
    probes: int = 0
    """Killed invocations re-run once at a higher limit to measure their need."""
    probe_cost: float = 0.0


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the provider can tell about memory, and whether it reports tracing."""

    tracing: bool = True
    payloads: bool = True
    probe: bool = True
    """Re-run one invocation killed for memory per window at :data:`PROBE_MEMORY_MB`."""


def _stochastic_round(x: float, u: float) -> int:
    return int(math.floor(x + u))


def _duration_quantile(mean_ms: float, q: float) -> float:
    return float(mean_ms * (_A + _B * q**_C))


def simulate(
    w: Workload,
    ref: FunctionRef,
    memory_mb: int,
    timeout_s: float,
    start: float,
    end: float,
    u: Sequence[float],
    dependency: DependencyState,
    evidence: Evidence,
) -> tuple[WindowFacts, Outcome]:
    """The facts a provider reports for the window, and the true outcome; ``u`` holds DRAWS uniforms."""
    n = _stochastic_round(w.rate_at((start + end) / 2) * (end - start) * (0.7 + 0.6 * u[0]), u[1])
    if n <= 0:
        empty = WindowFacts(ref=ref, start=start, end=end, invocations=0)
        return empty, Outcome(0, 0, 0, 0.0, None, None)
    extra: dict[str, float] = {
        "price_gb_s": PRICE_GB_S,
        "price_per_request": PRICE_REQUEST,
        "duration_avg_ms": w.duration_ms(memory_mb),
        "cpu_time_ms": w.cpu_ms,
    }
    if w.kind == "leak":
        ooms, peak, p90, failed_mb, reached = _leak(w, memory_mb, n, u[1], extra, evidence)
    else:
        ooms, peak, p90, failed_mb, reached = _payload(w, memory_mb, n, u, extra, evidence)
    probe_cost = _probe(w, memory_mb, u[7], extra) if ooms and evidence.probe else 0.0
    if ooms and evidence.tracing:
        extra["traced_peak_memory_mb"] = reached + failed_mb  # what it held + what failed
        extra["traced_failed_allocation_mb"] = failed_mb
    survivors = n - ooms
    mean_ms = w.duration_ms(memory_mb)
    timeout_ms = timeout_s * 1000.0
    timeouts = 0
    limit = timeout_ms / mean_ms
    if survivors and limit < _A + _B:
        share_over = 1.0 - ((max(0.0, limit - _A) / _B) ** (1.0 / _C))
        timeouts = min(survivors, _stochastic_round(survivors * share_over, u[5]))
    calls = n
    dep_errors = min(calls, _stochastic_round(calls * dependency.error_rate, u[6]))
    failed_by_dep = min(survivors - timeouts, dep_errors)
    durations: dict[str, float | None] = dict.fromkeys(
        ("duration_p50_ms", "duration_p95_ms", "duration_p99_ms", "duration_max_ms")
    )
    if survivors:
        top = _duration_quantile(mean_ms, u[4] ** (1.0 / survivors))
        durations = {
            "duration_p50_ms": min(timeout_ms, _duration_quantile(mean_ms, 0.5)),
            "duration_p95_ms": min(timeout_ms, _duration_quantile(mean_ms, 0.95)),
            "duration_p99_ms": min(timeout_ms, _duration_quantile(mean_ms, 0.99)),
            "duration_max_ms": min(timeout_ms, top),
        }
    facts = WindowFacts(
        ref=ref,
        start=start,
        end=end,
        invocations=n,
        errors=ooms + timeouts + failed_by_dep,
        timeouts=timeouts,
        ooms=ooms,
        throttles=0,
        cold_starts=_stochastic_round(n * 0.01, u[6]),
        peak_memory_mb=peak,
        dependencies={
            w.dependency: DependencyFacts(w.dependency, calls, dep_errors, dependency.latency_ms)
        },
        extra=extra,
        duration_p50_ms=durations["duration_p50_ms"],
        duration_p95_ms=durations["duration_p95_ms"],
        duration_p99_ms=durations["duration_p99_ms"],
        duration_max_ms=durations["duration_max_ms"],
    )
    cost = n * w.cost_per_invocation(memory_mb)
    probes = 1 if probe_cost else 0
    return facts, Outcome(n, ooms, timeouts, cost, peak, p90, probes, probe_cost)


def _fitting(w: Workload, memory_mb: int) -> float:
    """The uniform draw below which a payload fits in ``memory_mb`` (1.0: every payload fits)."""
    room = memory_mb - w.start_mb
    if w.mb_per_kb <= 0:
        return 1.0 if room >= 0 else 0.0
    if room <= 0:
        return 0.0
    return float(min(1.0, (room / w.mb_per_kb / w.payload_max_kb) ** (1.0 / w.skew)))


def _payload(
    w: Workload,
    memory_mb: int,
    n: int,
    u: Sequence[float],
    extra: dict[str, float],
    evidence: Evidence,
) -> tuple[int, float | None, float | None, float, float]:
    """A function whose need is constant or grows with its payload."""
    k, pmax, slope = w.skew, w.payload_max_kb, w.mb_per_kb
    u_fit = _fitting(w, memory_mb)
    ooms = min(n, _stochastic_round(n * (1.0 - u_fit), u[1])) if u_fit < 1.0 else 0
    survivors = n - ooms
    peak = p90 = None
    largest = 0.0
    if survivors:
        paid = pmax * (u_fit * u[2] ** (1.0 / survivors)) ** k
        largest = paid
        peak = w.start_mb + slope * paid
        p90 = w.start_mb + slope * pmax * (0.9 * u_fit) ** k
        if survivors >= 3 and evidence.payloads:
            extra["memory_mb_per_payload_kb"] = slope
            extra["memory_base_mb"] = w.start_mb
    failed_mb = reached = 0.0
    if ooms:
        u_failed = u_fit + (1.0 - u_fit) * u[3] ** (1.0 / ooms)
        failed_payload = pmax * u_failed**k
        largest = max(largest, failed_payload)
        work = w.work_mb + slope * failed_payload
        chunk = max(1.0, w.chunk * work)
        allocated = math.floor(max(0.0, memory_mb - w.runtime_mb) / chunk) * chunk
        reached, failed_mb = w.runtime_mb + allocated, chunk
        if ooms >= 3 and survivors < 3 and slope > 0 and evidence.payloads and evidence.tracing:
            # A tracer sees each killed invocation's payload and failed allocation: their
            # regression gives the growth per KB (too low when the work is allocated in parts).
            extra["memory_mb_per_payload_kb"] = w.chunk * slope
            extra["memory_base_mb"] = w.runtime_mb + w.chunk * w.work_mb
    if evidence.payloads:
        extra["payload_kb_max"] = largest
    return ooms, peak, p90, failed_mb, reached


def _probe(w: Workload, memory_mb: int, u: float, extra: dict[str, float]) -> float:
    """Re-run one killed invocation alone at :data:`PROBE_MEMORY_MB`; report its peak, return its cost.

    The invocation is one of the window's killed ones, drawn with ``u``; it runs on a fresh
    worker, so a leaking function's probe shows one invocation's need, not a worn worker's.
    """
    if w.kind == "leak":
        peak, payload = w.start_mb + w.leak_mb, None
    else:
        u_fit = _fitting(w, memory_mb)
        payload = w.payload_max_kb * (u_fit + (1.0 - u_fit) * u) ** w.skew
        peak = w.start_mb + w.mb_per_kb * payload
    extra["probe_memory_mb"] = float(PROBE_MEMORY_MB)
    extra["probe_peak_memory_mb"] = min(peak, float(PROBE_MEMORY_MB))
    if payload is not None:
        extra["probe_payload_kb"] = payload
    return w.cost_per_invocation(PROBE_MEMORY_MB)


def _leak(
    w: Workload,
    memory_mb: int,
    n: int,
    u1: float,
    extra: dict[str, float],
    evidence: Evidence,
) -> tuple[int, float | None, float | None, float, float]:
    """A function whose worker keeps ``leak_mb`` after each invocation until it is recycled."""
    served = math.floor(max(0.0, memory_mb - w.start_mb) / w.leak_mb)
    ooms = 0
    if served < w.worker_life:
        ooms = min(n, _stochastic_round(n / (served + 1), u1))
    age = min(served, w.worker_life)
    peak = w.start_mb + w.leak_mb * age if n > ooms else None
    p90 = w.start_mb + 0.9 * w.leak_mb * age if n > ooms else None
    if evidence.payloads and n - ooms >= 3:
        extra["worker_start_memory_mb"] = w.start_mb
        extra["memory_growth_mb_per_invocation"] = w.leak_mb
        extra["worker_lifetime_invocations"] = float(w.worker_life)
    return ooms, peak, p90, w.leak_mb, w.start_mb + w.leak_mb * served
