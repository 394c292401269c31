"""What a window of one function shows about memory: peaks, kills, traces, probes and models.

Given how many of the window's invocations ran out of memory (counted per slot in
:mod:`tuner.providers.sim.slots`), this draws the largest surviving and failing payloads,
the trace of a killed invocation, a probe, and the growth models a provider can report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tuner.providers.sim.slots import (
    U_FAILED,
    U_HUGE_MAX,
    U_PEAK,
    U_PROBE,
    fitting,
    huge_fitting,
    served_per_worker,
)
from tuner.providers.sim.workloads import MAX_MEMORY_MB, Workload

PROBE_MEMORY_MB = MAX_MEMORY_MB
"""A probe re-runs a killed invocation at Lambda's largest memory size."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the provider can tell about memory, and whether it reports tracing."""

    tracing: bool = True
    payloads: bool = True
    probe: bool = True
    """Re-run one invocation killed for memory per window at :data:`PROBE_MEMORY_MB`."""


@dataclass(frozen=True, slots=True)
class Memory:
    """The memory side of a window: the surviving invocations' peak and p90, a probe's cost."""

    peak_mb: float | None
    p90_mb: float | None
    probe_cost: float = 0.0


@dataclass(frozen=True, slots=True)
class Killed:
    """A window of one function as its memory sees it: how many ran, and how many were killed."""

    w: Workload
    memory_mb: int
    invocations: int
    ooms: int
    huge: int
    """Invocations with a huge payload (a long tail), killed or not."""
    u: Sequence[float]
    """The slot's uniform numbers."""
    evidence: Evidence


def memory_outcome(k: Killed, extra: dict[str, float]) -> Memory:
    """Peaks of the survivors and, in ``extra``, what a provider reports about memory."""
    if k.w.kind == "leak":
        peak, p90, failed_mb, reached = _leak(k, extra)
        failed_payload = None
    else:
        peak, p90, failed_mb, reached, failed_payload = _payload(k, extra)
    probe_cost = 0.0
    if k.ooms and k.evidence.probe:
        probe_cost = _probe(k.w, k.memory_mb, k.u[U_PROBE], failed_payload, extra)
    if k.ooms and k.evidence.tracing:
        extra["traced_peak_memory_mb"] = reached + failed_mb  # what it held + what failed
        extra["traced_failed_allocation_mb"] = failed_mb
    return Memory(peak, p90, probe_cost)


def _payload(
    k: Killed, extra: dict[str, float]
) -> tuple[float | None, float | None, float, float, float | None]:
    """A function whose need is constant or grows with its payload (a long tail included).

    Payloads are those an invocation ran: a split payload's parts, not the whole of it.
    """
    w, memory_mb, ooms, huge, u, evidence = k.w, k.memory_mb, k.ooms, k.huge, k.u, k.evidence
    skew, pmax, slope, part = w.skew, w.payload_max_kb, w.mb_per_kb, w.split_kb
    u_fit = fitting(w, memory_mb)
    v_fit = huge_fitting(w, memory_mb)
    huge_kept = math.floor(huge * v_fit) if huge else 0
    huge_failed = min(huge - huge_kept, ooms)
    survivors = k.invocations - ooms
    usual_kept = max(0, survivors - huge_kept)
    peak = p90 = None
    largest = 0.0
    if usual_kept:
        largest = min(part, pmax * (u_fit * u[U_PEAK] ** (1.0 / usual_kept)) ** skew)
        p90 = w.start_mb + slope * min(part, pmax * (0.9 * u_fit) ** skew)
    if huge_kept:
        huge_kb = w.tail_kb * (0.9 + 0.1 * v_fit * u[U_HUGE_MAX] ** (1.0 / huge_kept))
        largest = max(largest, min(part, huge_kb))
    if survivors:
        peak = w.start_mb + slope * largest
        if p90 is None:
            p90 = peak
        if survivors >= 3 and evidence.payloads:
            extra["memory_mb_per_payload_kb"] = slope
            extra["memory_base_mb"] = w.start_mb
    failed_mb = reached = 0.0
    failed_payload = None
    if ooms:
        if huge_failed:
            v = v_fit + (1.0 - v_fit) * u[U_FAILED] ** (1.0 / huge_failed)
            failed_payload = w.tail_kb * (0.9 + 0.1 * v)
        else:
            u_failed = u_fit + (1.0 - u_fit) * u[U_FAILED] ** (1.0 / ooms)
            failed_payload = pmax * u_failed**skew
        failed_payload = min(part, failed_payload)
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
    return peak, p90, failed_mb, reached, failed_payload


def _probe(
    w: Workload, memory_mb: int, u: float, failed_payload: float | None, extra: dict[str, float]
) -> float:
    """Re-run one killed invocation alone at :data:`PROBE_MEMORY_MB`; report its peak, return its cost.

    The invocation is one of the window's killed ones, drawn with ``u`` (a huge one when
    one was killed); it runs on a fresh worker, so a leaking function's probe shows one
    invocation's need, not a worn worker's, and the worker's memory before it (the
    runtime's) is reported too.
    """
    if w.kind == "leak":
        peak, payload = w.start_mb + w.leak_mb, None
    else:
        u_fit = fitting(w, memory_mb)
        payload = w.payload_max_kb * (u_fit + (1.0 - u_fit) * u) ** w.skew
        if failed_payload is not None and failed_payload > w.payload_max_kb:
            payload = failed_payload  # a huge payload was killed
        payload = min(payload, w.split_kb)  # or a part of one
        peak = w.start_mb + w.mb_per_kb * payload
    extra["probe_memory_mb"] = float(PROBE_MEMORY_MB)
    extra["runtime_memory_mb"] = w.runtime_mb
    extra["probe_peak_memory_mb"] = min(peak, float(PROBE_MEMORY_MB))
    if payload is not None:
        extra["probe_payload_kb"] = payload
    return w.cost_per_invocation(PROBE_MEMORY_MB)


def _leak(k: Killed, extra: dict[str, float]) -> tuple[float | None, float | None, float, float]:
    """A function whose worker keeps ``leak_mb`` after each invocation until it is recycled."""
    w = k.w
    served = served_per_worker(w, k.memory_mb)
    age = min(served, w.worker_life)
    survived = k.invocations > k.ooms
    peak = w.start_mb + w.leak_mb * age if survived else None
    p90 = w.start_mb + 0.9 * w.leak_mb * age if survived else None
    if k.evidence.payloads and k.invocations - k.ooms >= 3:
        extra["worker_start_memory_mb"] = w.start_mb
        extra["memory_growth_mb_per_invocation"] = w.leak_mb
        extra["worker_lifetime_invocations"] = float(w.worker_life)
    return peak, p90, w.leak_mb, w.start_mb + w.leak_mb * served
