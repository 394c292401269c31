"""The quick check of a usual window never lets through what the full checks refuse."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.domain.model import FunctionRef, WindowFacts
from tuner.engine.telemetry import _usual, impossible, why_impossible

ODD = [None, 0, 1, 3, -1, 2.5, 0.0, 7.0, math.nan, math.inf, -math.inf, True, 1e13, 1e308, "2"]
USUAL = {
    "invocations": 120,
    "errors": 3,
    "timeouts": 1,
    "ooms": 2,
    "throttles": 0,
    "cold_starts": 4,
    "duration_p50_ms": 20.0,
    "duration_p95_ms": 80.0,
    "duration_p99_ms": 95.5,
    "duration_max_ms": 130.0,
    "peak_memory_mb": 140.5,
}


@settings(max_examples=500, deadline=None)
@given(
    odd=st.dictionaries(st.sampled_from(sorted(USUAL)), st.sampled_from(ODD), max_size=2),
    bounds=st.sampled_from([(0.0, 900.0), (900.0, 0.0), (0.0, math.inf), (0, 900)]),
)
def test_a_window_the_quick_check_passes_is_one_the_full_checks_pass(
    odd: dict[str, object], bounds: tuple[float, float]
) -> None:
    """A usual window with one or two odd numbers in it: both checks agree."""
    window = WindowFacts(FunctionRef("sim", "f"), *bounds, **{**USUAL, **odd})  # type: ignore[arg-type]
    if _usual(window):
        assert why_impossible(window) is None
    assert impossible(window) == (None if _usual(window) else why_impossible(window))


def test_the_usual_window_takes_the_quick_check() -> None:
    window = WindowFacts(
        FunctionRef("sim", "f"),
        0.0,
        900.0,
        invocations=120,
        errors=3,
        ooms=0,
        duration_p95_ms=80.0,
        peak_memory_mb=140.5,
    )
    assert _usual(window) and impossible(window) is None
    assert (
        why_impossible(WindowFacts(FunctionRef("sim", "f"), 0.0, 900.0, invocations=2, ooms=3))
        == "ooms (3) exceed the invocations (2)"
    )
