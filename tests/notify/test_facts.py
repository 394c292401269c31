"""The facts a message shows, from the engine's fact names."""

from __future__ import annotations

from typing import Any

import pytest

from tuner.notify.facts import fact_lines

CHECKOUT: dict[str, Any] = {
    "provider": "local",
    "function": "checkout",
    "labels": {"team": "payments"},
    "memory_mb": 128.0,
    "timeout_ms": 5000.0,
    "batch_size": None,
    "fan_out": 1.0,
    "cache_ttl_s": 0.0,
    "cache_enabled": False,
    "window_s": 10.0,
    "invocations": 20.0,
    "errors": 20.0,
    "error_rate": 1.0,
    "timeouts": 0.0,
    "timeout_rate": 0.0,
    "ooms": 0.0,
    "oom_rate": 0.0,
    "throttles": 0.0,
    "cold_starts": 3.0,
    "duration_p50_ms": 3.07,
    "duration_p95_ms": 13.1,
    "duration_p99_ms": 41.6,
    "duration_max_ms": 41.6,
    "duration_timeout_ratio": 0.0083,
    "peak_memory_mb": 24.3,
    "memory_utilisation": 0.19,
    "dependencies": {"payments-api": {"calls": 20.0, "errors": 20.0, "latency_p95_ms": 0.45}},
    "worst_dependency": "payments-api",
    "dependency_error_rate": 1.0,
    "extra": {"cache_hits": 0.0, "records_per_invocation": 250.0},
}


def test_a_window_in_a_few_readable_lines() -> None:
    assert fact_lines(CHECKOUT) == [
        ("invocations", "20"),
        ("errors", "20 (100.0%)"),
        ("cold_starts", "3"),
        ("duration", "p50 3.1 ms, p95 13.1 ms, p99 41.6 ms, max 41.6 ms"),
        ("timeout", "5,000 ms (p99 at 1% of it)"),
        ("memory", "128 MB, peak 24.3 MB (19%)"),
        ("dependency payments-api", "20/20 calls failed (100.0%), p95 0.5 ms"),
        ("fan_out", "1"),
        ("cache_ttl_s", "0 s"),
        ("extra.records_per_invocation", "250"),
    ]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({}, []),
        ({"invocations": None, "ooms": None}, []),
        (
            {"worst_dependency": "orders-db", "dependency_error_rate": 0.8},
            [("dependency orders-db", "80.0% of calls failed")],
        ),
        ({"peak_memory_mb": 301.0}, [("memory", "peak 301 MB")]),
        ({"queue_depth": 12.5, "idle": 0.0}, [("queue_depth", "12.5")]),
    ],
)
def test_missing_and_partial_facts(facts: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert fact_lines(facts) == expected
