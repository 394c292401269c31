"""Telemetry that cannot be true: windows no rule may act on.

Pure.  A provider's window enters the core here.  Counts must be whole, finite,
non-negative numbers, and failures can be no more than the invocations. Durations and
memory must be finite and plausible. The window's bounds must be finite and in order.
A value that is merely unknown (None, or a NaN provider-specific measurement) is not
impossible: it reads as ``null`` and no rule fires on it.
"""

from __future__ import annotations

import math
from typing import Any

from tuner.domain.model import WindowFacts

COUNTS = ("invocations", "errors", "timeouts", "ooms", "throttles", "cold_starts")
PART_OF_INVOCATIONS = ("errors", "timeouts", "ooms", "cold_starts")
MEASUREMENTS = {
    "duration_p50_ms": 7 * 86_400_000.0,
    "duration_p95_ms": 7 * 86_400_000.0,
    "duration_p99_ms": 7 * 86_400_000.0,
    "duration_max_ms": 7 * 86_400_000.0,
    "peak_memory_mb": 10_000_000.0,
}
"""Each measurement's most plausible value: a week of duration, 10 TB of memory."""
MAX_COUNT = 1e12


def impossible(window: WindowFacts) -> str | None:
    """Why the window cannot be true, or None when it can be."""
    return None if _usual(window) else why_impossible(window)


def why_impossible(window: WindowFacts) -> str | None:
    """:func:`impossible` by every check in turn, for the window :func:`_usual` does not pass."""
    if not (_finite(window.start) and _finite(window.end)) or window.start >= window.end:
        return f"the window's bounds are impossible ({window.start!r} .. {window.end!r})"
    for name in COUNTS:
        value = getattr(window, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name} is not a number ({value!r})"
        if not _finite(value) or value < 0 or value > MAX_COUNT or value != int(value):
            return f"{name} is not a plausible count ({value!r})"
    invocations = window.invocations
    if invocations is not None:
        for name in PART_OF_INVOCATIONS:
            value = getattr(window, name)
            if value is not None and value > invocations:
                return f"{name} ({value:g}) exceed the invocations ({invocations:g})"
    for name, most in MEASUREMENTS.items():
        value = getattr(window, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name} is not a number ({value!r})"
        if not (_finite(value) and 0 <= value <= most):
            return f"{name} is not plausible ({value!r})"
    return None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _usual(w: WindowFacts) -> bool:
    """True for the usual window, checked at once: every number a plain one, in range.

    Plain ints and floats only (a bool, NaN or anything else takes the full checks), so
    that a window this passes is one :func:`impossible` finds nothing wrong with.  A count
    that is an int is whole already; only a float count is tested for a fraction.
    """
    n = w.invocations
    if n is None or not _count(n, MAX_COUNT):
        return False
    if type(w.start) is not float or type(w.end) is not float:
        return False
    if not -math.inf < w.start < w.end < math.inf:
        return False
    for value in (w.errors, w.timeouts, w.ooms, w.cold_starts):
        if value is not None and not _count(value, n):
            return False
    if w.throttles is not None and not _count(w.throttles, MAX_COUNT):
        return False
    for measure in (w.duration_p50_ms, w.duration_p95_ms, w.duration_p99_ms, w.duration_max_ms):
        if measure is not None and (type(measure) not in _PLAIN or not 0 <= measure <= _WEEK_MS):
            return False
    peak = w.peak_memory_mb
    return peak is None or (type(peak) in _PLAIN and 0 <= peak <= _MOST_MB)


def _count(value: float | None, most: float) -> bool:
    """A plain whole number from 0 to ``most``; None passes (the caller tells what it means)."""
    kind = type(value)
    if kind is int:
        return 0 <= value <= most  # type: ignore[operator]
    return value is None or (kind is float and 0 <= value <= most and value == int(value))


_PLAIN = (int, float)
_WEEK_MS = MEASUREMENTS["duration_p50_ms"]
_MOST_MB = MEASUREMENTS["peak_memory_mb"]
