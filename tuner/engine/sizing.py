"""Sizing memory from evidence: what a function needs, and what a change saves.

Pure: reads the facts of a window (see :mod:`tuner.engine.facts`) and returns numbers
with the evidence they rest on, so that a decision can say why it chose a size.  The
evidence, strongest first:

- a probe: an invocation killed for memory, re-run once at a higher limit, and the peak it
  reached there (``extra.probe_peak_memory_mb`` at ``extra.probe_memory_mb``, with its
  payload ``extra.probe_payload_kb`` where known);
- how memory grows with payload size (``extra.memory_mb_per_payload_kb`` and
  ``extra.memory_base_mb``), applied to the largest payload seen (``extra.payload_kb_max``,
  ``extra.lookback_payload_kb_max``), including payloads of invocations that failed, or
  to the largest part where larger payloads are split (``split_above_kb``);
- how a worker's memory grows over its life (``extra.worker_start_memory_mb``,
  ``extra.memory_growth_mb_per_invocation``, ``extra.worker_lifetime_invocations``);
- tracing of an invocation killed for memory: what it held plus the allocation that
  failed (``traced_peak_memory_mb``, with ``traced_failed_allocation_mb``; read at the top
  level where the facts carry them, else from ``extra``);
- the peak of the invocations that survived (``peak_memory_mb``,
  ``extra.lookback_peak_memory_mb``), which bounds the need from below.

Each estimate names what it was measured from (:class:`Source`), and a decision's summary
says it, with what the other evidence said (:func:`also_said`).

Headroom (:func:`with_margin`) is kept over the part of a need that grows with traffic:
where a growth model splits the need into a fixed part (the runtime and the work every
invocation does, ``fixed_mb``) and a part that grows with the payload or a worker's age,
a margin of 10% leaves room for a payload 10% larger than the largest seen, or a worker
that grows 10% more; a need known only as a peak keeps the margin over all of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tuner.domain.model import extra_number, fact_number

LAMBDA_PRICE_GB_S = 0.0000166667
"""Lambda's x86 price per GB-second, used when the provider does not report a price."""
MONTH_S = 30 * 86_400.0
CPU_MB_PER_VCPU = 1769.0
"""On Lambda, CPU grows with memory up to one full vCPU at 1,769 MB."""
NEAR_LIMIT = 0.8
"""A killed invocation that had reached this share of its memory was killed growing."""
NEAR_LIMIT_PROBE = 0.95
"""A probe that peaked at this share of its limit ran out of memory there too."""


class Source(StrEnum):
    """What a need was measured from; the value is how a decision's summary names it."""

    PROBE = "its probe"
    PAYLOAD = "its payload model"
    LEAK = "its workers' growth"
    TRACE = "its trace"
    PEAK = "its peak"


@dataclass(frozen=True, slots=True)
class Need:
    """An estimate of the most memory one invocation needs, and what it rests on."""

    mb: float
    basis: str
    source: Source
    lower_bound: bool = False
    """True when the need may be larger still (an invocation grew to the limit in small steps)."""
    fixed_mb: float = 0.0
    """The part of the need that does not grow with traffic (0: not known apart)."""


def with_margin(need: Need, margin: float) -> float:
    """The need plus ``margin`` of its growing part (of all of it when no part is known fixed)."""
    fixed = min(max(need.fixed_mb, 0.0), need.mb)
    return need.mb + margin * (need.mb - fixed)


def margin_basis(need: Need, margin: float) -> str:
    """How the margin was applied, for a decision's summary: ``+ 10%`` or ``+ 10% of the growing part``."""
    return f"+ {margin:.0%}" if need.fixed_mb <= 0 else f"+ {margin:.0%} of its growing part"


def _fact(facts: Mapping[str, Any], name: str) -> float | None:
    """A fact at the top level, else among the provider's ``extra`` measurements."""
    value = fact_number(facts, name)
    return value if value is not None else extra_number(facts, name)


def _largest(*values: float | None) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def largest_payload_seen(facts: Mapping[str, Any]) -> float | None:
    """The largest payload seen, in the window or the lookback (failed invocations' too)."""
    return _largest(
        extra_number(facts, "payload_kb_max"), extra_number(facts, "lookback_payload_kb_max")
    )


def largest_payload(facts: Mapping[str, Any]) -> float | None:
    """The largest payload one invocation runs: the largest seen, or a part's size where
    larger ones are split (``split_above_kb``)."""
    largest = largest_payload_seen(facts)
    above = fact_number(facts, "split_above_kb")
    return min(largest, above) if largest is not None and above else largest


def payload_need(facts: Mapping[str, Any]) -> Need | None:
    """The need at the largest payload seen, from how memory grows with payload size."""
    slope = extra_number(facts, "memory_mb_per_payload_kb")
    base = extra_number(facts, "memory_base_mb")
    largest = largest_payload(facts)
    if slope is None or base is None or largest is None or slope <= 0:
        return None
    mb = base + slope * largest
    basis = f"{base:.0f} MB + {slope:.3g} MB/KB x the largest payload ({largest:.0f} KB)"
    return Need(mb, basis, Source.PAYLOAD, fixed_mb=base)


def leak_need(facts: Mapping[str, Any]) -> Need | None:
    """The need at the end of a worker's life, for memory that grows with each invocation."""
    start = extra_number(facts, "worker_start_memory_mb")
    growth = extra_number(facts, "memory_growth_mb_per_invocation")
    life = extra_number(facts, "worker_lifetime_invocations")
    if start is None or not growth or not life:
        return None
    mb = start + growth * life
    return Need(
        mb,
        f"a worker grows {growth:.2g} MB per invocation over its {life:.0f} invocations",
        Source.LEAK,
        fixed_mb=start,
    )


def traced_need(facts: Mapping[str, Any]) -> Need | None:
    """What a killed invocation had reached plus the allocation that failed.

    When the invocation had reached most of its memory (``NEAR_LIMIT``) it was growing in
    small steps up to the limit, and the failed allocation says little about how much
    more it wanted: the estimate is then only a lower bound.
    """
    need = _fact(facts, "traced_peak_memory_mb")
    failed = _fact(facts, "traced_failed_allocation_mb")
    memory = fact_number(facts, "memory_mb")
    if need is None:
        return None
    if failed is None:  # the trace measured the need, but not the allocation that failed
        return Need(need, f"a traced need of {need:.0f} MB", Source.TRACE)
    held = need - failed
    near = memory is not None and held >= NEAR_LIMIT * memory
    return Need(
        need,
        f"a killed invocation held {held:.0f} MB when {failed:.0f} MB failed to allocate",
        Source.TRACE,
        lower_bound=near,
    )


def probe_need(facts: Mapping[str, Any]) -> Need | None:
    """What a killed invocation needed when it was re-run at a higher limit (a probe).

    A probe measures the whole need of one failing invocation, however it allocates.
    Where memory grows with payload size, the payload model is carried through the probe's
    point to the largest payload seen, so that a model fitted to partial allocations (too
    low) does not hide the need of the largest failing payload.  Where the runtime's own
    memory is known (``extra.runtime_memory_mb``), everything the model puts above it is
    scaled by what the probe measured against the model: a model that sees only a share
    of each allocation sees that share of the work and of its growth alike.  Otherwise
    the line runs through the model's base.  A probe that itself ran out at its limit
    gives only a lower bound.
    """
    peak = extra_number(facts, "probe_peak_memory_mb")
    if peak is None or peak <= 0:
        return None
    limit = extra_number(facts, "probe_memory_mb")
    basis = (
        f"a killed invocation re-run at {limit:.0f} MB peaked at {peak:.0f} MB"
        if limit
        else (f"a killed invocation re-run peaked at {peak:.0f} MB")
    )
    if limit is not None and peak >= NEAR_LIMIT_PROBE * limit:
        return Need(peak, f"{basis}, its limit", Source.PROBE, lower_bound=True)
    base = extra_number(facts, "memory_base_mb")
    payload = extra_number(facts, "probe_payload_kb")
    largest = largest_payload(facts)
    if base is not None and payload and largest and largest > payload and peak > base:
        runtime = extra_number(facts, "runtime_memory_mb")
        slope = extra_number(facts, "memory_mb_per_payload_kb")
        if runtime is not None and slope and 0.0 <= runtime < base:
            scale = (peak - runtime) / (base - runtime + slope * payload)
            fixed = runtime + scale * (base - runtime)
            mb = fixed + scale * slope * largest
        else:
            fixed, mb = base, base + (peak - base) / payload * largest
        at_largest = f"{basis} with {payload:.0f} KB; {mb:.0f} MB at {largest:.0f} KB"
        return Need(mb, at_largest, Source.PROBE, fixed_mb=fixed)
    return Need(peak, basis, Source.PROBE)


def survivors_peak(facts: Mapping[str, Any]) -> float | None:
    """The highest peak of invocations that survived, in this window or the lookback."""
    return _largest(
        fact_number(facts, "peak_memory_mb"), extra_number(facts, "lookback_peak_memory_mb")
    )


def oom_evidence(facts: Mapping[str, Any], memory_mb: float) -> list[Need]:
    """Every estimate of the failing invocations' need that puts it above ``memory_mb``.

    Only evidence about the failing invocations counts: a probe, a growth model or a trace.
    """
    evidence = (probe_need(facts), payload_need(facts), leak_need(facts), traced_need(facts))
    return [n for n in evidence if n is not None and n.mb > memory_mb]


def strongest(needs: list[Need]) -> Need | None:
    """The need to size from: the largest of those measured (not a lower bound), else the
    largest lower bound.  None means the need is unknown (the invocations died at the
    limit and nothing says how much more they wanted)."""
    if not needs:
        return None
    exact = [n for n in needs if not n.lower_bound]
    return max(exact or needs, key=lambda n: n.mb)


def also_said(needs: list[Need], chosen: Need) -> str:
    """What the evidence not chosen said, for a summary: ``; its trace: 316 MB``."""
    return "".join(
        f"; {n.source}: {'at least ' if n.lower_bound else ''}{n.mb:.0f} MB"
        for n in needs
        if n is not chosen
    )


def steady_need(facts: Mapping[str, Any]) -> Need | None:
    """What a function that does not run out of memory needs: the largest evidence of all."""
    found = [n for n in (payload_need(facts), leak_need(facts)) if n]
    peak = survivors_peak(facts)
    if peak is not None and peak > 0:
        days = extra_number(facts, "lookback_days")
        span = f"over {days:.0f} days" if days else "in the window"
        found.append(Need(peak, f"peak {peak:.0f} MB {span}", Source.PEAK))
    return max(found, key=lambda n: n.mb) if found else None


def monthly_saving(facts: Mapping[str, Any], before_mb: float, after_mb: float) -> float | None:
    """Dollars a month that ``before_mb -> after_mb`` saves at the window's traffic.

    Where CPU scales with memory and the CPU time is known, the longer duration at the
    smaller size is priced in; without the CPU time the duration is assumed unchanged.
    """
    invocations = fact_number(facts, "invocations")
    window_s = fact_number(facts, "window_s")
    mean_ms = extra_number(facts, "duration_avg_ms") or fact_number(facts, "duration_p50_ms")
    if not invocations or not window_s or mean_ms is None:
        return None
    ratio = after_mb / before_mb
    if facts.get("cpu_scales_with_memory") is not False:
        ratio = cost_ratio_at(facts, before_mb, after_mb) or ratio
    price = extra_number(facts, "price_gb_s") or LAMBDA_PRICE_GB_S
    per_month = invocations / window_s * MONTH_S
    return per_month * mean_ms / 1000.0 * before_mb / 1024.0 * price * (1.0 - ratio)


def _cpu_share(memory_mb: float) -> float:
    return min(1.0, memory_mb / CPU_MB_PER_VCPU)


def duration_split(facts: Mapping[str, Any]) -> tuple[float, float] | None:
    """The mean duration split into wall time on CPU and time waiting, at today's memory.

    Needs the CPU time per invocation (``extra.cpu_time_ms``, e.g. Lambda Insights'
    ``cpu_total_time``) and the mean duration (``extra.duration_avg_ms``).
    """
    cpu = extra_number(facts, "cpu_time_ms")
    mean = extra_number(facts, "duration_avg_ms")
    memory = fact_number(facts, "memory_mb")
    if cpu is None or mean is None or not memory:
        return None
    on_cpu = min(mean, cpu / _cpu_share(memory))
    return on_cpu, mean - on_cpu


def smallest_in_time(
    facts: Mapping[str, Any], max_slowdown: float, cpu_scales: bool
) -> tuple[float, str] | None:
    """The least memory at which the function stays within ``max_slowdown`` and its timeout.

    The slowdown is counted from today's mean duration, or from the fastest window mean of
    the lookback (``extra.lookback_duration_avg_ms_min``) when that is lower.  The longest
    invocation stays under 80% of the timeout; one that is over it already (a slow cold
    start) gets no slower, though memory above one vCPU may still go.
    Where CPU does not scale with memory, duration does not depend on memory: 0.  None
    when the CPU time is unknown (the slowdown cannot be predicted).
    """
    if not cpu_scales:
        return 0.0, ""
    split = duration_split(facts)
    memory = fact_number(facts, "memory_mb")
    if split is None or not memory:
        return None
    on_cpu, waiting = split
    today = on_cpu + waiting
    # From the fastest mean of the lookback where known, so that successive right-sizings
    # cannot each slow the function by max_slowdown (x1.2, then x1.44...).
    allowed = max_slowdown * min(
        today, extra_number(facts, "lookback_duration_avg_ms_min") or math.inf
    )
    longest, timeout = fact_number(facts, "duration_max_ms"), fact_number(facts, "timeout_ms")
    if longest and timeout:  # the longest under 80% of the timeout, or no slower if over it
        allowed = min(allowed, max(today, 0.8 * timeout / longest * today))
    slowdown = allowed / today
    budget = allowed - waiting  # wall time the CPU part may take
    if on_cpu <= 0:
        return 0.0, ""
    if budget <= 0:
        return memory, "no slack in time"
    cpu_work = on_cpu * _cpu_share(memory)  # wall time at one full vCPU
    share = cpu_work / budget
    mb = share * CPU_MB_PER_VCPU if share < 1.0 else CPU_MB_PER_VCPU
    return mb, f"{on_cpu:.0f} ms on CPU slows at most x{slowdown:.2f}"


def cost_ratio_at(facts: Mapping[str, Any], before_mb: float, after_mb: float) -> float | None:
    """Predicted GB-seconds at ``after_mb`` over those at ``before_mb`` (None: CPU time unknown)."""
    split = duration_split(facts)
    if split is None:
        return None
    on_cpu, waiting = split
    after_s = waiting + on_cpu * _cpu_share(before_mb) / _cpu_share(after_mb)
    return after_mb * after_s / (before_mb * (on_cpu + waiting))
