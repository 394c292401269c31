"""Dependency calls are real HTTP calls, recorded with their latency and errors; the cache."""

from __future__ import annotations

import time
from dataclasses import replace

from tuner.providers.local.host import FunctionHost


def test_a_slow_dependency_call_is_recorded_with_its_latency(host: FunctionHost) -> None:
    result = host.invoke("lookup", {"key": "a", "dependency": "slow-db"})

    assert result.outcome == "ok"
    assert result.result == {"dependency": "slow-db", "path": "/items/a"}
    calls = host.records.dependency_calls(["lookup"], 0, time.time() + 1)
    assert [(c.name, c.error) for c in calls] == [("slow-db", "")]
    assert 100 <= calls[0].latency_ms < 400


def test_a_refused_connection_is_a_quick_dependency_error(host: FunctionHost) -> None:
    started = time.monotonic()
    result = host.invoke("lookup", {"key": "a", "dependency": "dead-api"})

    assert time.monotonic() - started < 2.0
    assert result.outcome == "error"
    assert "dead-api" in result.error
    [call] = host.records.dependency_calls(["lookup"], 0, time.time() + 1)
    assert call.name == "dead-api"
    assert "refused" in call.error.lower()
    assert call.latency_ms < 500


def test_the_cache_is_off_while_its_ttl_is_zero(host: FunctionHost) -> None:
    for _ in range(3):
        host.invoke("lookup", {"key": "a", "dependency": "slow-db"})

    assert len(host.records.dependency_calls(["lookup"], 0, time.time() + 1)) == 3
    records = host.records.invocations(["lookup"], 0, time.time() + 1)
    assert sum(r.cache_hits for r in records) == 0


def test_with_the_cache_on_repeated_keys_skip_the_slow_dependency(host: FunctionHost) -> None:
    host.deploy("lookup", replace(host.config("lookup"), cache_ttl_s=60))

    durations = [
        host.invoke("lookup", {"key": "a", "dependency": "slow-db"}).duration_ms for _ in range(4)
    ]

    assert len(host.records.dependency_calls(["lookup"], 0, time.time() + 1)) == 1
    records = host.records.invocations(["lookup"], 0, time.time() + 1)
    assert [(r.cache_hits, r.cache_misses) for r in records] == [(0, 1), (1, 0), (1, 0), (1, 0)]
    assert durations[0] > 100
    assert max(durations[1:]) < 50


def test_turning_the_cache_off_forgets_what_it_held(host: FunctionHost) -> None:
    host.deploy("lookup", replace(host.config("lookup"), cache_ttl_s=60))
    host.invoke("lookup", {"key": "a", "dependency": "slow-db"})
    host.deploy("lookup", replace(host.config("lookup"), cache_ttl_s=0))
    host.deploy("lookup", replace(host.config("lookup"), cache_ttl_s=60))

    host.invoke("lookup", {"key": "a", "dependency": "slow-db"})

    assert len(host.records.dependency_calls(["lookup"], 0, time.time() + 1)) == 2
