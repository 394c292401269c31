"""Probes on the local host: an invocation killed for memory, re-run once at a higher limit.

Real workers, for real: a handler that allocates its work in two halves is killed before
the second half, and only a probe sees the whole of what it needs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_world import WallClock, write_functions, write_handlers

from tuner.engine.actions import MoreMemory
from tuner.providers.local import LOCAL_LIMITS
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.probing import ProbePolicy
from tuner.providers.local.provider import LocalProvider

HALVES = {
    "halves": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "def handler(event, context):\n"
        "    first = bytearray(event['mb'] // 2 * 1024 * 1024)\n"
        "    second = bytearray(event['mb'] // 2 * 1024 * 1024)\n"
        "    return len(first) + len(second)\n",
    ),
    "caller": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "def handler(event, context):\n"
        "    answer = context.invoke('echo', {'from': 'caller'})\n"
        "    block = bytearray(200 * 1024 * 1024)\n"
        "    return [answer, len(block)]\n",
    ),
}


def started(functions_dir: Path, state_dir: Path, policy: ProbePolicy) -> LocalProvider:
    write_handlers(functions_dir, HALVES)
    host = FunctionHost(functions_dir, state_dir, WallClock(), probe=policy)
    provider = LocalProvider(host, WallClock(), http_port=None, traffic=False)
    provider.start()
    return provider


@pytest.fixture
def probing(tmp_path: Path) -> Iterator[LocalProvider]:
    """A provider whose host probes, over the test functions and two that run out."""
    provider = started(write_functions(tmp_path / "fns"), tmp_path / "state", ProbePolicy())
    yield provider
    provider.close()


def window(provider: LocalProvider, name: str, since: float) -> dict:
    (target,) = [t for t in provider.targets() if t.ref.name == name]
    facts = provider.observe([target], since, time.time() + 1)[target.ref]
    return dict(facts.extra)


def test_a_probe_measures_the_whole_need_and_the_caller_gets_one_answer(
    probing: LocalProvider,
) -> None:
    since = time.time()
    result = probing.host.invoke("halves", {"mb": 200})
    assert result.outcome == "oom"  # the caller's answer: the failure, once
    probing.host.prober.wait(15.0)
    extra = window(probing, "halves", since)
    assert extra["probe_memory_mb"] == 1024  # 8 x the 128 MB it was killed at
    assert 200 < extra["probe_peak_memory_mb"] < 320  # both halves and the runtime
    assert extra["probes"] == 1
    records = probing.host.records.invocations(["halves"], since, time.time() + 1)
    assert [r.outcome for r in records] == ["oom"]  # the probe is no invocation of the function
    # Sizing reads the probe: memory goes to its peak + 10% in one step.
    facts = {"memory_mb": 128.0, "ooms": 1.0, "invocations": 1.0, "extra": extra}
    plan = MoreMemory(margin=0.1).plan(probing.host.config("halves"), LOCAL_LIMITS, facts)
    assert plan.change is not None
    assert plan.change.after == pytest.approx(extra["probe_peak_memory_mb"] * 1.1, abs=1)
    assert "re-run at 1024 MB" in plan.summary


def test_one_probe_per_function_per_interval_and_none_for_a_timeout(
    probing: LocalProvider,
) -> None:
    since = time.time()
    host = probing.host
    assert host.invoke("halves", {"mb": 200}).outcome == "oom"
    host.prober.wait(15.0)
    assert host.invoke("halves", {"mb": 200}).outcome == "oom"  # within every_s: no probe
    assert host.invoke("sleeper", {"seconds": 30}).outcome == "timeout"
    host.prober.wait(15.0)
    assert window(probing, "halves", since)["probes"] == 1
    assert "probes" not in window(probing, "sleeper", since)


def test_a_probe_never_goes_above_its_cap_and_then_says_so(tmp_path: Path) -> None:
    policy = ProbePolicy(max_mb=192)
    provider = started(write_functions(tmp_path / "fns"), tmp_path / "state", policy)
    try:
        since = time.time()
        assert provider.host.invoke("halves", {"mb": 400}).outcome == "oom"
        provider.host.prober.wait(15.0)
        extra = window(provider, "halves", since)
    finally:
        provider.close()
    assert extra["probe_memory_mb"] == 192
    assert extra["probe_peak_memory_mb"] == 192  # killed at the probe's limit too
    facts = {"memory_mb": 128.0, "ooms": 1.0, "invocations": 1.0, "extra": extra}
    plan = MoreMemory(margin=0.1, growth=2.0).plan(
        provider.host.config("halves"), LOCAL_LIMITS, facts
    )
    assert plan.change is not None and plan.change.after >= 256  # a lower bound: grow on


def test_a_probe_runs_no_other_function_and_a_disabled_host_never_probes(
    probing: LocalProvider, tmp_path: Path
) -> None:
    since = time.time()
    assert probing.host.invoke("caller", {}).outcome == "oom"
    probing.host.prober.wait(15.0)
    assert window(probing, "caller", since)["probes"] == 1
    echoes = probing.host.records.invocations(["echo"], since, time.time() + 1)
    assert len(echoes) == 1  # the caller's own call; the probe's call did not run
    off = started(
        write_functions(tmp_path / "off"), tmp_path / "off-state", ProbePolicy(enabled=False)
    )
    try:
        assert off.host.invoke("halves", {"mb": 200}).outcome == "oom"
        off.host.prober.wait(15.0)
        assert "probes" not in window(off, "halves", since)
    finally:
        off.close()
