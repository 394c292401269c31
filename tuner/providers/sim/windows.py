"""One simulated window of one function: what happened, and what a provider would report.

Invocations are not simulated one by one: the counts, the largest payloads and the
largest durations are drawn from their exact distributions (the maximum of ``n`` uniform
draws is ``v ** (1 / n)``), so a window costs the same for ten invocations as for a million.
A window is one part of a traffic slot (:mod:`tuner.providers.sim.slots`), usually all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tuner.domain.model import DependencyFacts, FunctionRef, WindowFacts
from tuner.providers.sim.memory import Evidence, Killed, memory_outcome
from tuner.providers.sim.slots import (
    U_DEPENDENCY,
    U_INVOCATIONS_AT,
    U_SLOWEST,
    U_TIMEOUTS,
    Part,
    counted_in,
    failed_in,
    next_failure,
    slot_invocations,
    slot_ooms,
    stochastic_round,
)
from tuner.providers.sim.workloads import (
    DURATION_SPREAD,
    PRICE_GB_S,
    PRICE_REQUEST,
    Workload,
)

RETRIES = 2
"""A failed invocation is tried again twice, as Lambda does an asynchronous invocation."""
_A, _B, _C = DURATION_SPREAD

__all__ = ["RETRIES", "DependencyState", "Evidence", "Outcome", "simulate"]


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
    """Every invocation at the mean duration (with its share of inits), and the requests;
    a split payload's parts as invocations of their own."""
    peak_mb: float | None
    p90_mb: float | None
    probes: int = 0
    """Killed invocations re-run once at a higher limit to measure their need."""
    probe_cost: float = 0.0
    successes: float = 0.0
    """Invocations that succeeded, at once or when tried again."""
    billed: float = 0.0
    """What the traffic was billed: ``cost``, an invocation stopped at the timeout billed
    up to it, and the tries again that failures cause."""
    first_oom_at: float | None = None
    """When the first invocation of the window ran out of memory."""
    cold_share: float = 0.0
    """Share of the invocations that started a new worker (what their inits cost)."""


def _duration_quantile(mean_ms: float, q: float) -> float:
    return float(mean_ms * (_A + _B * q**_C))


def _share_over(limit: float) -> float:
    """Share of invocations whose duration exceeds ``limit`` times the mean."""
    if limit >= _A + _B:
        return 0.0
    return float(1.0 - (max(0.0, limit - _A) / _B) ** (1.0 / _C))


def simulate(
    w: Workload,
    ref: FunctionRef,
    memory_mb: int,
    timeout_s: float,
    part: Part,
    u: Sequence[float],
    dependency: DependencyState,
    evidence: Evidence,
) -> tuple[WindowFacts, Outcome]:
    """The facts a provider reports for a part of a slot, and the true outcome.

    ``u`` holds the slot's uniform numbers (:data:`~.slots.DRAWS` + :data:`~.slots.PART_DRAWS`).
    """
    n_slot = slot_invocations(w, part.slot_start, part.slot_end, u)
    n = n_slot if part.whole else counted_in(n_slot, part, u[U_INVOCATIONS_AT])
    if n <= 0:
        empty = WindowFacts(ref=ref, start=part.start, end=part.end, invocations=0)
        return empty, Outcome(0, 0, 0, 0.0, None, None)
    ooms_slot, huge_slot = slot_ooms(w, memory_mb, n_slot, u)
    ooms, huge = ooms_slot, huge_slot
    if not part.whole:
        ooms = failed_in(n_slot, ooms_slot, part, u[U_INVOCATIONS_AT])
        huge = min(n, counted_in(huge_slot, part, u[U_INVOCATIONS_AT]))
    rate = w.rate_at((part.slot_start + part.slot_end) / 2)
    cold = w.cold_share(rate)
    mean_ms = w.duration_ms(memory_mb)
    init_ms = w.init_ms(memory_mb)
    extra: dict[str, float] = {
        "price_gb_s": PRICE_GB_S,
        "price_per_request": PRICE_REQUEST,
        "duration_avg_ms": mean_ms + cold * init_ms,
        "cpu_time_ms": w.cpu_time_ms(memory_mb),
    }
    if w.splits:
        extra["supports_split"] = 1.0  # its handler is tuner_handler's split
    mem = memory_outcome(Killed(w, memory_mb, n, ooms, huge, u, evidence), extra)
    survivors = n - ooms
    timeout_ms = timeout_s * 1000.0
    p_warm = _share_over(timeout_ms / mean_ms)
    p_cold = _share_over((timeout_ms - init_ms) / mean_ms) if init_ms else p_warm
    p_timeout = (1.0 - cold) * p_warm + cold * p_cold
    timeouts = min(survivors, stochastic_round(survivors * p_timeout, u[U_TIMEOUTS]))
    dep_errors = min(n, stochastic_round(n * dependency.error_rate, u[U_DEPENDENCY]))
    failed_by_dep = min(survivors - timeouts, dep_errors)
    cold_starts = stochastic_round(n * cold, u[U_DEPENDENCY])
    durations: dict[str, float | None] = dict.fromkeys(
        ("duration_p50_ms", "duration_p95_ms", "duration_p99_ms", "duration_max_ms")
    )
    if survivors:
        top = _duration_quantile(mean_ms, u[U_SLOWEST] ** (1.0 / survivors))
        top += init_ms if cold_starts else 0.0
        durations = {
            "duration_p50_ms": min(timeout_ms, _duration_quantile(mean_ms, 0.5)),
            "duration_p95_ms": min(timeout_ms, _duration_quantile(mean_ms, 0.95)),
            "duration_p99_ms": min(timeout_ms, _duration_quantile(mean_ms, 0.99)),
            "duration_max_ms": min(timeout_ms, top),
        }
    facts = WindowFacts(
        ref=ref,
        start=part.start,
        end=part.end,
        invocations=n,
        errors=ooms + timeouts + failed_by_dep,
        timeouts=timeouts,
        ooms=ooms,
        throttles=0,
        cold_starts=cold_starts,
        peak_memory_mb=mem.peak_mb,
        dependencies={
            w.dependency: DependencyFacts(w.dependency, n, dep_errors, dependency.latency_ms)
        },
        extra=extra,
        duration_p50_ms=durations["duration_p50_ms"],
        duration_p95_ms=durations["duration_p95_ms"],
        duration_p99_ms=durations["duration_p99_ms"],
        duration_max_ms=durations["duration_max_ms"],
    )
    price = w.cost_per_invocation(memory_mb, cold=cold)
    at_timeout = PRICE_REQUEST + PRICE_GB_S * memory_mb / 1024.0 * timeout_s
    paid = n + w.split_parts(n - huge, huge)  # a part costs what a whole invocation does
    successes, billed = float(survivors - timeouts), paid * price + timeouts * (at_timeout - price)
    # Tried again: a killed request fails again with the same payload, except on a fresh
    # worker of a leaking function; a timed-out one fails again as often as the first time.
    if ooms:
        recovers = w.kind == "leak" and memory_mb >= w.start_mb
        successes += ooms if recovers else 0
        billed += ooms * price * (1 if recovers else RETRIES)
    if timeouts:
        p = p_timeout
        successes += timeouts * (1.0 - p**RETRIES)
        billed += timeouts * sum(p**k for k in range(RETRIES)) * (p * at_timeout + (1 - p) * price)
    first = next_failure(n_slot, ooms_slot, part.lo, u[U_INVOCATIONS_AT]) if ooms else None
    outcome = Outcome(
        n,
        ooms,
        timeouts,
        paid * price,
        mem.peak_mb,
        mem.p90_mb,
        1 if mem.probe_cost else 0,
        mem.probe_cost,
        successes,
        billed,
        None if first is None else part.slot_start + first * (part.slot_end - part.slot_start),
        cold,
    )
    return facts, outcome
