"""Dependency calls are real HTTP calls, recorded with their latency and errors; the cache."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace

import pytest

from tests.serving.connections import held_by_server
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.specs import DependencySpec
from tuner.providers.local.stubs import DependencyStubs


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


def test_a_caller_killed_mid_call_costs_the_stub_one_log_line(
    capfd: pytest.CaptureFixture[str],
) -> None:
    stubs = DependencyStubs({"slow": DependencySpec(name="slow", latency_ms=1500)})
    url = stubs.start()["slow"]
    try:
        script = f"import urllib.request; urllib.request.urlopen({url + '/x'!r}, timeout=30)"
        callers = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(3)]
        deadline = time.monotonic() + 10
        while held_by_server(int(url.rsplit(":", 1)[1])) < 3:  # each waits for its answer
            assert time.monotonic() < deadline
            time.sleep(0.02)
        for caller in callers:
            caller.kill()
            caller.wait()
        time.sleep(1.6)  # the stub finishes its latency and would answer now
    finally:
        stubs.close()

    out, err = capfd.readouterr()
    assert (out + err).count("the caller went away before its answer") == 3
    assert "Traceback" not in err and "ConnectionResetError" not in err
    assert "BrokenPipeError" not in err
