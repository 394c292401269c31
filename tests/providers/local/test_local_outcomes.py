"""Each invocation outcome happens for real in a worker process."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest

from tuner.providers.local.host import FunctionHost
from tuner.providers.local.recording import InvocationRecord


def recorded(host: FunctionHost, name: str) -> list[InvocationRecord]:
    """Every recorded invocation of a function so far."""
    return host.records.invocations([name], 0, time.time() + 1)


def test_ok_returns_the_handler_result_with_the_platform_context(host: FunctionHost) -> None:
    result = host.invoke("echo", {"hello": "world"})

    assert result.outcome == "ok"
    assert result.result["event"] == {"hello": "world"}
    assert result.result["function"] == "echo"
    assert result.result["memory"] == 128
    assert 4000 < result.result["remaining"] <= 5000


def test_error_reports_the_exception(host: FunctionHost) -> None:
    result = host.invoke("failing", 42)

    assert result.outcome == "error"
    assert result.error == "ValueError: bad input: 42"
    record = recorded(host, "failing")[-1]
    assert record.outcome == "error"


def test_a_worker_that_dies_mid_invocation_is_an_error(host: FunctionHost) -> None:
    result = host.invoke("crasher", {})

    assert (result.outcome, result.error) == ("error", "worker exited with code 3")
    assert host.invoke("echo", {}).outcome == "ok"
    assert host.warm_workers("crasher") == []


def test_timeout_kills_the_worker(host: FunctionHost) -> None:
    host.invoke("sleeper", {"seconds": 0})
    [warm] = host.warm_workers("sleeper")

    started = time.monotonic()
    result = host.invoke("sleeper", {"seconds": 30})

    assert result.outcome == "timeout"
    assert 1.0 <= time.monotonic() - started < 2.0
    assert host.warm_workers("sleeper") == []
    with pytest.raises(ProcessLookupError):
        os.kill(warm, 0)
    record = recorded(host, "sleeper")[-1]
    assert (record.outcome, record.duration_ms) == ("timeout", 1000.0)


def test_over_allocation_is_an_oom_reported_at_the_limit(host: FunctionHost) -> None:
    result = host.invoke("hog", {"mb": 200})

    assert result.outcome == "oom"
    record = recorded(host, "hog")[-1]
    assert record.outcome == "oom"
    assert record.peak_memory_mb == 128.0


def test_allocation_below_the_limit_succeeds_and_reports_its_peak(host: FunctionHost) -> None:
    assert host.invoke("hog", {"mb": 60}).outcome == "ok"
    first = recorded(host, "hog")[-1]
    assert host.invoke("hog", {"mb": 10}).outcome == "ok"
    second = recorded(host, "hog")[-1]

    assert first.peak_memory_mb is not None and 65 < first.peak_memory_mb < 110
    # The peak is reset per invocation in a warm worker: 10 MB now, not 60 MB as before.
    assert second.peak_memory_mb is not None and second.peak_memory_mb < first.peak_memory_mb - 40


def test_memory_limit_follows_the_configuration(host: FunctionHost) -> None:
    assert host.invoke("hog", {"mb": 150}).outcome == "oom"

    host.deploy("hog", replace(host.config("hog"), memory_mb=256))

    assert host.invoke("hog", {"mb": 150}).outcome == "ok"


def test_first_invocation_is_cold_then_warm_and_cold_again_after_oom(
    host: FunctionHost,
) -> None:
    host.invoke("hog", {"mb": 1})
    host.invoke("hog", {"mb": 1})
    host.invoke("hog", {"mb": 500})
    host.invoke("hog", {"mb": 1})

    records = recorded(host, "hog")
    assert [r.cold_start for r in records] == [True, False, False, True]
    assert records[0].init_ms is not None and records[1].init_ms is None
