"""The facts a message shows: measured numbers in a few readable lines with units."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from tuner.domain.model import fact_number
from tuner.engine.explaining import shown

MAX_LINES = 10

_COUNTS = (
    ("init_errors", None),
    ("errors", "error_rate"),
    ("timeouts", "timeout_rate"),
    ("ooms", "oom_rate"),
    ("throttles", None),
    ("cold_starts", None),
)
_DURATIONS = ("duration_p50_ms", "duration_p95_ms", "duration_p99_ms", "duration_max_ms")
_KNOBS = ("batch_size", "fan_out", "split_above_kb", "concurrency", "cache_ttl_s", "handover_s")
_SHOWN_OR_HIDDEN = frozenset(
    {
        "invocations",
        "timeout_ms",
        "duration_timeout_ratio",
        "memory_mb",
        "peak_memory_mb",
        "memory_utilisation",
        "dependencies",
        "dependency_calls",
        "dependency_errors",
        "dependency_error_rate",
        "dependency_latency_p95_ms",
        "worst_dependency",
        "dependency_failing_functions",
        "provider",
        "function",
        "labels",
        "window_s",
        "fleet_functions",
        "cache_enabled",
        "cpu_scales_with_memory",
        "extra",
        *_DURATIONS,
        *_KNOBS,
        *(name for pair in _COUNTS for name in pair if name),
    }
)


def fact_lines(facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Label and text of the facts worth showing, most telling first.

    Counts come with their rate (``ooms 11 (100.0%)``), durations and memory on one line
    each; zero counts are left out (``ooms 0`` says little).  Facts without a line of
    their own (provider-specific ones, ``extra``) follow when they are not zero.
    """
    lines: list[tuple[str, str]] = []
    invocations = fact_number(facts, "invocations")
    if invocations is not None:
        lines.append(("invocations", f"{invocations:,.0f}"))
    for count_name, rate_name in _COUNTS:
        count = fact_number(facts, count_name)
        if count:
            rate = fact_number(facts, rate_name) if rate_name else None
            lines.append((count_name, f"{count:,.0f}" + (f" ({rate:.1%})" if rate else "")))
    lines += _durations(facts) + _memory(facts) + dependency_lines(facts)
    for knob in _KNOBS:
        value = fact_number(facts, knob)
        if value is not None:
            lines.append((knob, format_fact(knob, value)))
    lines += _others(facts)
    return lines[:MAX_LINES]


def _durations(facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    lines = []
    parts = [
        f"{name.split('_')[1]} {format_fact(name, value)}"
        for name in _DURATIONS
        if (value := fact_number(facts, name)) is not None
    ]
    if parts:
        lines.append(("duration", ", ".join(parts)))
    timeout = fact_number(facts, "timeout_ms")
    if timeout:
        ratio = fact_number(facts, "duration_timeout_ratio")
        tail = f" (p99 at {ratio:.0%} of it)" if ratio is not None else ""
        lines.append(("timeout", f"{timeout:,.0f} ms{tail}"))
    return lines


def _memory(facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    memory = fact_number(facts, "memory_mb")
    peak = fact_number(facts, "peak_memory_mb")
    parts = [] if memory is None else [f"{memory:,.0f} MB"]
    if peak is not None:
        share = f" ({peak / memory:.0%})" if memory else ""
        parts.append(f"peak {format_fact('peak_memory_mb', peak)}{share}")
    return [("memory", ", ".join(parts))] if parts else []


def dependency_lines(facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    """One line per dependency that had failed calls: ``12/40 calls failed (30.0%)``."""
    deps = facts.get("dependencies")
    lines = []
    if isinstance(deps, Mapping):
        for name, dep in sorted(deps.items()):
            if not isinstance(dep, Mapping) or not dep.get("errors"):
                continue
            calls, errors = dep.get("calls") or 0, dep["errors"]
            text = f"{errors:,.0f}/{calls:,.0f} calls failed"
            if calls:
                text += f" ({errors / calls:.1%})"
            if dep.get("latency_p95_ms") is not None:
                text += f", p95 {format_fact('latency_p95_ms', dep['latency_p95_ms'])}"
            lines.append((f"dependency {name}", text))
    worst, rate = facts.get("worst_dependency"), fact_number(facts, "dependency_error_rate")
    if not lines and isinstance(worst, str) and rate:
        lines.append((f"dependency {worst}", f"{rate:.1%} of calls failed"))
    return lines


def _others(facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    extra = facts.get("extra")
    named = {n: v for n, v in facts.items() if n not in _SHOWN_OR_HIDDEN}
    if isinstance(extra, Mapping):
        named.update({f"extra.{n}": v for n, v in extra.items()})
    return [
        (name, format_fact(name, value))
        for name, value in sorted(named.items())
        if _is_number(value) and value != 0
    ]


def format_fact(name: str, value: Any) -> str:
    """A fact's value with its unit, from the fact's name."""
    if not _is_number(value):
        return shown(value)
    if name.endswith(("_rate", "_utilisation", "_ratio")):
        return f"{value:.1%}"
    number = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    for suffix, unit in (("_ms", " ms"), ("_mb", " MB"), ("_s", " s")):
        if name.endswith(suffix):
            return number + unit
    return number


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
