"""One window from the parts of the traffic slots it covers: counts add up, extremes are kept.

A window longer than a slot, or one that begins or ends inside a slot and crosses into
the next, is simulated part by part; a provider reports it as one window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tuner.domain.model import DependencyFacts, WindowFacts
from tuner.providers.sim.windows import Outcome

_LARGEST = ("payload_kb_max", "traced_peak_memory_mb", "probe_peak_memory_mb")
"""Extras of which a window reports the largest over its parts."""


def _total(values: Sequence[int | None]) -> int:
    return sum(v or 0 for v in values)


def _largest(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def merge_facts(parts: Sequence[WindowFacts]) -> WindowFacts:
    """The facts of consecutive parts as one window."""
    if len(parts) == 1:
        return parts[0]
    busy = [p for p in parts if p.invocations]
    if not busy:
        return replace(parts[0], end=parts[-1].end)
    main = max(busy, key=lambda p: p.invocations or 0)
    extra = dict(main.extra)
    for name in _LARGEST:
        value = _largest([p.extra.get(name) for p in busy])
        if value is not None:
            extra[name] = value
    invocations = _total([p.invocations for p in busy])
    mean = sum((p.extra.get("duration_avg_ms", 0.0)) * (p.invocations or 0) for p in busy)
    if "duration_avg_ms" in extra:
        extra["duration_avg_ms"] = mean / invocations
    dependencies = {
        name: DependencyFacts(
            name,
            _total([p.dependencies[name].calls for p in busy if name in p.dependencies]),
            _total([p.dependencies[name].errors for p in busy if name in p.dependencies]),
            _largest([p.dependencies[name].latency_p95_ms for p in busy if name in p.dependencies]),
        )
        for name in main.dependencies
    }
    return replace(
        main,
        start=parts[0].start,
        end=parts[-1].end,
        invocations=invocations,
        errors=_total([p.errors for p in busy]),
        timeouts=_total([p.timeouts for p in busy]),
        ooms=_total([p.ooms for p in busy]),
        throttles=_total([p.throttles for p in busy]),
        cold_starts=_total([p.cold_starts for p in busy]),
        duration_max_ms=_largest([p.duration_max_ms for p in busy]),
        peak_memory_mb=_largest([p.peak_memory_mb for p in busy]),
        dependencies=dependencies,
        extra=extra,
    )


def merge_outcomes(parts: Sequence[Outcome]) -> Outcome:
    """The true outcomes of consecutive parts as one window's."""
    if len(parts) == 1:
        return parts[0]
    firsts = [p.first_oom_at for p in parts if p.first_oom_at is not None]
    return Outcome(
        invocations=sum(p.invocations for p in parts),
        ooms=sum(p.ooms for p in parts),
        timeouts=sum(p.timeouts for p in parts),
        cost=sum(p.cost for p in parts),
        peak_mb=_largest([p.peak_mb for p in parts]),
        p90_mb=_largest([p.p90_mb for p in parts]),
        probes=sum(p.probes for p in parts),
        probe_cost=sum(p.probe_cost for p in parts),
        successes=sum(p.successes for p in parts),
        billed=sum(p.billed for p in parts),
        first_oom_at=min(firsts) if firsts else None,
        cold_share=max(parts, key=lambda p: p.invocations).cold_share,
    )
