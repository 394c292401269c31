"""Combining CloudWatch statistics and log summaries into WindowFacts."""

from __future__ import annotations

from dataclasses import replace

from tuner.domain.model import FunctionConfig, FunctionRef, WindowFacts
from tuner.providers.aws.metrics import FunctionStats
from tuner.providers.aws.reports import LogSummary

_EXTRA_STATS = ("duration_avg_ms", "concurrent_executions_max", "memory_utilization_pct")


def window_facts(
    ref: FunctionRef,
    start: float,
    end: float,
    stats: FunctionStats,
    summary: LogSummary | None,
) -> WindowFacts:
    """The facts of one function over one window.

    Counters that only logs can give (timeouts, OOMs, cold starts, init errors and init
    timeouts) are None when the logs were not read.  Duration percentiles come from the
    REPORT lines when there are some, else from CloudWatch percentiles when those were
    asked for.
    """
    invocations = stats.get("invocations")
    if invocations is None and summary is not None and summary.reports:
        invocations = float(len(summary.reports))
    extra = {key: stats[key] for key in _EXTRA_STATS if key in stats}
    if summary is not None:
        extra["log_reports"] = float(len(summary.reports))
        extra["malformed_log_lines"] = float(summary.malformed)
        extra["init_timeouts"] = float(summary.init_timeouts)
    return WindowFacts(
        ref=ref,
        start=start,
        end=end,
        invocations=_count(invocations),
        errors=_count(stats.get("errors")),
        throttles=_count(stats.get("throttles")),
        timeouts=summary.timeouts if summary else None,
        ooms=summary.ooms if summary else None,
        cold_starts=summary.cold_starts if summary else None,
        init_errors=summary.init_errors if summary else None,
        duration_p50_ms=_percentile(summary, 50, stats.get("duration_p50_ms")),
        duration_p95_ms=_percentile(summary, 95, stats.get("duration_p95_ms")),
        duration_p99_ms=_percentile(summary, 99, stats.get("duration_p99_ms")),
        duration_max_ms=_largest(
            stats.get("duration_max_ms"), summary.duration_percentile(100) if summary else None
        ),
        peak_memory_mb=_largest(
            stats.get("used_memory_max_mb"), summary.peak_memory_mb if summary else None
        ),
        extra=extra,
    )


def canary_facts(
    ref: FunctionRef, start: float, end: float, summary: LogSummary, version: str, weight: float
) -> WindowFacts:
    """The facts of a version on trial on an alias (a canary) alone, from its log lines.

    The function's CloudWatch metrics mix every version, so they are left out: invocations
    are the version's REPORT lines, errors its failed invocations (timeouts, out-of-memory
    kills, reports with an error status).
    """
    stats = {"invocations": float(len(summary.reports)), "errors": float(summary.failed)}
    facts = window_facts(ref, start, end, stats, summary)
    extra = {**facts.extra, "canary_version": float(version), "canary_weight": weight}
    return replace(facts, extra=extra)


def _count(value: float | None) -> int | None:
    return None if value is None else int(round(value))


def _percentile(summary: LogSummary | None, q: float, fallback: float | None) -> float | None:
    from_logs = summary.duration_percentile(q) if summary else None
    return from_logs if from_logs is not None else fallback


def _largest(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def with_handler_facts(facts: WindowFacts, config: FunctionConfig) -> WindowFacts:
    """The window with ``supports_handover`` / ``supports_split`` where the function carries
    tuner_handler's settings (so has the knobs): it declares that its code uses them."""
    declared = {}
    if config.handover_s is not None:
        declared["supports_handover"] = 1.0
    if config.fan_out is not None:
        declared["supports_split"] = 1.0
    return replace(facts, extra={**facts.extra, **declared}) if declared else facts
