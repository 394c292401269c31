"""How facts are built from a window: the values of the names of the fact reference.

All numbers are floats (``3.0``, not ``3``) so that arithmetic such as
``0.9 * memory_mb`` is well typed in CEL; a fact that was not measured is ``null``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from tuner.domain.model import DependencyFacts, Target, WindowFacts
from tuner.engine.measured import cost_facts
from tuner.engine.reference import FACTS, FAILING_DEPENDENCY_ERROR_RATE


def _f(value: float | int | None) -> float | None:
    """A measurement as a float; NaN, infinite or negative telemetry counts as missing."""
    if value is None:
        return None
    f = float(value)
    return f if 0.0 <= f < _INF else None  # false for NaN too


_INF = math.inf


def _div(part: float | None, whole: float | None) -> float | None:
    """``part / whole`` of two values already through :func:`_f`; None without a whole."""
    return None if part is None or not whole else part / whole


def _ratio(part: float | int | None, whole: float | int | None) -> float | None:
    return _div(_f(part), _f(whole))


def _dependency_error_rate(dep: DependencyFacts) -> float | None:
    """Failed calls per call; None without calls, or for numbers that cannot be true."""
    calls = dep.calls
    if dep.errors == 0 and type(calls) is int and calls > 0:  # the usual dependency, at once
        return 0.0
    rate = _ratio(dep.errors, calls)
    return rate if rate is not None and rate <= 1.0 else None


def _dependencies(
    window: WindowFacts,
) -> tuple[
    dict[str, dict[str, float | None]], str | None, float | None, float | None, float, float
]:
    """Each dependency's facts; the worst by error rate, then latency; its rate; the worst
    latency; and the calls and failed calls to all of them."""
    out: dict[str, dict[str, float | None]] = {}
    worst: tuple[float, float, str] | None = None
    latency: float | None = None
    calls = errors = 0.0
    for dep in window.dependencies.values():
        calls += dep.calls
        errors += dep.errors
        rate = _dependency_error_rate(dep)
        p95 = _f(dep.latency_p95_ms)
        out[dep.name] = {
            "calls": _f(dep.calls),
            "errors": _f(dep.errors),
            "error_rate": rate,
            "latency_p95_ms": p95,
        }
        if rate is None:
            continue
        if p95 is not None:
            latency = p95 if latency is None else max(latency, p95)
        key = (rate, p95 or 0.0, dep.name)
        if worst is None or key > worst:
            worst = key
    if worst is None:
        return out, None, None, latency, calls, errors
    return out, worst[2], worst[0], latency, calls, errors


def _extra(extra: Mapping[str, float | int | None]) -> dict[str, float | None]:
    """The provider's measurements through :func:`_f` (a window has dozens).

    Usually every one is already a finite, non-negative float, and a copy is all it takes.
    """
    out = dict(extra)
    for v in out.values():
        if type(v) is not float or not 0.0 <= v < _INF:
            return {k: _f(v) for k, v in extra.items()}
    return out  # every value is a finite, non-negative float


def build_facts(
    target: Target, window: WindowFacts | None, fleet: Mapping[str, Any]
) -> dict[str, Any]:
    """The facts one condition evaluation sees for a target over a window.

    ``fleet`` carries fleet-level facts computed by :func:`fleet_facts`.
    """
    cfg = target.config
    w = window
    timeout_ms = None if cfg.timeout_s is None else cfg.timeout_s * 1000.0
    memory_mb = float(cfg.memory_mb)
    facts: dict[str, Any] = {
        "provider": target.ref.provider,
        "function": target.ref.name,
        "labels": dict(target.labels),
        "memory_mb": memory_mb,
        "timeout_ms": timeout_ms,
        "cpu_scales_with_memory": target.limits.cpu_scales_with_memory,
        "batch_size": _f(cfg.batch_size),
        "fan_out": _f(cfg.fan_out),
        "split_above_kb": _f(cfg.split_above_kb),
        "concurrency": _f(cfg.concurrency),
        "cache_ttl_s": _f(cfg.cache_ttl_s),
        "cache_enabled": None if cfg.cache_ttl_s is None else cfg.cache_ttl_s > 0,
        "handover_s": _f(cfg.handover_s),
        "fleet_functions": float(fleet.get("fleet_functions", 0)),
    }
    if w is None:
        for name in FACTS:
            facts.setdefault(name, None)
        facts["dependencies"] = {}
        facts["extra"] = {}
        facts["evidence"] = {}
        facts["dependency_failing_functions"] = 0.0
        return facts
    f = _f
    dependencies, worst, worst_rate, worst_latency, calls, errors_ = _dependencies(w)
    failing = fleet.get("failing_dependencies", {})
    invocations, errors, timeouts, ooms = f(w.invocations), f(w.errors), f(w.timeouts), f(w.ooms)
    p99, peak = f(w.duration_p99_ms), f(w.peak_memory_mb)
    extra = w.extra
    facts["window_s"] = w.end - w.start
    facts["invocations"] = invocations
    facts["errors"] = errors
    facts["error_rate"] = None if errors is None or not invocations else errors / invocations
    facts["timeouts"] = timeouts
    facts["timeout_rate"] = None if timeouts is None or not invocations else timeouts / invocations
    facts["ooms"] = ooms
    facts["oom_rate"] = None if ooms is None or not invocations else ooms / invocations
    facts["throttles"] = f(w.throttles)
    facts["cold_starts"] = f(w.cold_starts)
    facts["init_errors"] = f(w.init_errors)
    for name in ("init_timeouts", "evictions", "evictions_over_request"):
        facts[name] = f(extra.get(name))
    facts["eviction_reason"] = w.evidence.get("eviction_reason")
    facts["duration_p50_ms"] = f(w.duration_p50_ms)
    facts["duration_p95_ms"] = f(w.duration_p95_ms)
    facts["duration_p99_ms"] = p99
    facts["duration_max_ms"] = f(w.duration_max_ms)
    facts["duration_timeout_ratio"] = _div(p99, f(timeout_ms))
    facts["peak_memory_mb"] = peak
    facts["memory_utilisation"] = _div(peak, f(memory_mb))
    facts["dependencies"] = dependencies
    facts["dependency_calls"] = f(calls) if dependencies else None
    facts["dependency_errors"] = f(errors_) if dependencies else None
    facts["dependency_error_rate"] = worst_rate
    facts["dependency_latency_p95_ms"] = worst_latency
    facts["worst_dependency"] = worst
    facts["dependency_failing_functions"] = (
        float(failing.get(worst, 0))
        if worst_rate and worst_rate >= FAILING_DEPENDENCY_ERROR_RATE
        else 0.0
    )
    facts["extra"] = _extra(extra)
    facts["traced_peak_memory_mb"] = f(extra.get("traced_peak_memory_mb"))
    facts["traced_failed_allocation_mb"] = f(extra.get("traced_failed_allocation_mb"))
    facts.update(cost_facts(facts, target.limits))
    facts["evidence"] = dict(w.evidence)
    return facts


def fleet_facts(functions: int, windows: Sequence[WindowFacts]) -> dict[str, Any]:
    """Facts about the whole fleet: its size and how many functions see each dependency failing."""
    failing: Counter[str] = Counter()
    for w in windows:
        for dep in w.dependencies.values():
            rate = _dependency_error_rate(dep)
            if rate is not None and rate >= FAILING_DEPENDENCY_ERROR_RATE:
                failing[dep.name] += 1
    return {"fleet_functions": functions, "failing_dependencies": dict(failing)}
