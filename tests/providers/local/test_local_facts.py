"""Window facts from recorded invocations: a pure computation, tested table-driven."""

from __future__ import annotations

import pytest

from tuner.domain.model import FunctionRef
from tuner.domain.stats import percentile
from tuner.providers.local.facts import window_facts
from tuner.providers.local.recording import DependencyCallRecord, InvocationRecord

REF = FunctionRef("local", "f")


def invocation(
    duration_ms: float, outcome: str = "ok", records: int | None = None, peak: float = 30.0
) -> InvocationRecord:
    return InvocationRecord("f", 1, 0.0, 1.0, duration_ms, outcome, peak, False, None, records)


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([], 95, None),
        ([7.0], 50, 7.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        (list(map(float, range(1, 101))), 95, 95.0),
        (list(map(float, range(1, 101))), 99, 99.0),
        ([5.0, 1.0, 3.0], 100, 5.0),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], p: float, expected: float | None) -> None:
    assert percentile(values, p) == expected


def test_an_empty_window_has_zero_invocations_and_nothing_else() -> None:
    facts = window_facts(REF, 10.0, 20.0, [], [])

    assert facts.invocations == 0 and facts.empty
    assert facts.errors is None and facts.peak_memory_mb is None and facts.duration_p95_ms is None
    assert facts.dependencies == {} and facts.extra == {}


def test_counts_and_percentiles() -> None:
    facts = window_facts(
        REF,
        0.0,
        10.0,
        [
            invocation(10.0),
            invocation(20.0, "error"),
            invocation(3000.0, "timeout"),
            invocation(5.0, "oom", peak=128.0),
        ],
        [
            DependencyCallRecord("f", "db", 1.0, 300.0, ""),
            DependencyCallRecord("f", "db", 2.0, 100.0, "ConnectionRefusedError"),
        ],
    )

    assert (facts.invocations, facts.errors, facts.timeouts, facts.ooms) == (4, 3, 1, 1)
    assert (facts.duration_p50_ms, facts.duration_max_ms, facts.peak_memory_mb) == (
        10.0,
        3000.0,
        128.0,
    )
    assert facts.dependencies["db"].calls == 2 and facts.dependencies["db"].errors == 1
    assert facts.dependencies["db"].latency_p95_ms == 300.0


def test_duration_per_record_comes_from_finished_batches_only() -> None:
    finished = window_facts(
        REF, 0, 10, [invocation(1000.0, records=50), invocation(3000.0, "timeout", records=100)], []
    )
    only_timeouts = window_facts(REF, 0, 10, [invocation(3000.0, "timeout", records=100)], [])

    assert finished.extra["records_per_invocation"] == 75.0
    assert finished.extra["duration_per_record_ms"] == 20.0
    assert "duration_per_record_ms" not in only_timeouts.extra  # 30 ms would understate it
    assert only_timeouts.extra["records_per_invocation"] == 100.0
