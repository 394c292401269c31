"""The oom rule waits for the local host's probe: pending from the kill until it measures.

Real workers, for real: functions are killed for memory, their probes wait their turn
and run, and each window says what the probes tell at that moment.  The host's clock is
one the test moves, so that a bound in time is crossed without waiting for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from local_world import write_handlers

from tuner.engine import load_rules
from tuner.engine.facts import build_facts
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.probing import ProbePolicy
from tuner.providers.local.provider import LocalProvider

RULES = Path(__file__).resolve().parents[3] / "rules" / "default.yaml"
HANDLERS = {
    # Appends small items: the line that fails states no size, so only a probe tells.
    "appender": (
        "memory_mb: 128\ntimeout_s: 10\n",
        "def handler(event, context):\n"
        "    items = []\n"
        "    for index in range(event['mb'] * 1024):\n"
        "        items.append(bytes(1000))\n"
        "    return len(items)\n",
    ),
    # Waits before it allocates: its probe takes a while.
    "slow": (
        "memory_mb: 128\ntimeout_s: 10\n",
        "import time\n\n"
        "def handler(event, context):\n"
        "    time.sleep(event.get('wait', 0))\n"
        "    return len(bytearray(event['mb'] * 1024 * 1024))\n",
    ),
}


class MovableClock:
    """The wall clock plus an offset a test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        """POSIX seconds, moved by the offset."""
        return time.time() + self.offset


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def provider(tmp_path: Path, clock: MovableClock) -> Iterator[LocalProvider]:
    """A host over the two functions that probes with a 30 s bound on pending."""
    write_handlers(tmp_path / "fns", HANDLERS)
    policy = ProbePolicy(wait_s=30.0)
    host = FunctionHost(tmp_path / "fns", tmp_path / "state", clock, probe=policy)
    running = LocalProvider(host, clock, http_port=None, traffic=False)
    running.start()
    yield running
    running.close()


def window(provider: LocalProvider, name: str, since: float, clock: MovableClock) -> dict[str, Any]:
    """The facts of a window from ``since`` to now, as the rules read them."""
    (target,) = [t for t in provider.targets() if t.ref.name == name]
    facts = provider.observe([target], since, clock.now() + 0.001)[target.ref]
    return build_facts(target, facts, {})


def oom_rule_fires(facts: dict[str, Any]) -> bool:
    rule = load_rules([RULES]).by_name("oom")
    assert rule is not None
    return rule.condition.evaluate(facts) is True


def test_the_oom_rule_waits_for_the_probe_then_sizes_from_it(
    provider: LocalProvider, clock: MovableClock
) -> None:
    since = clock.now()
    assert provider.host.invoke("slow", {"mb": 200, "wait": 1.5}).outcome == "oom"
    pending = window(provider, "slow", since, clock)
    assert pending["extra"]["probe_pending"] == 1.0  # the probe runs: the rule waits
    assert "probe_peak_memory_mb" not in pending["extra"]
    assert not oom_rule_fires(pending)
    provider.host.prober.wait(30.0)
    measured = window(provider, "slow", since, clock)
    assert "probe_pending" not in measured["extra"]
    assert 200 < measured["extra"]["probe_peak_memory_mb"] < 260
    assert oom_rule_fires(measured)


def test_a_measurement_stays_evidence_while_the_memory_is_the_one_killed_at(
    provider: LocalProvider, clock: MovableClock
) -> None:
    since = clock.now()
    assert provider.host.invoke("appender", {"mb": 200}).outcome == "oom"
    provider.host.prober.wait(30.0)
    later = clock.now() + 0.001
    assert provider.host.invoke("appender", {"mb": 200}).outcome == "oom"  # no probe again
    facts = window(provider, "appender", later, clock)  # a window without the probe's end
    assert facts["extra"]["probe_memory_mb"] == 1024
    assert facts["extra"]["probe_peak_memory_mb"] > 200
    assert window(provider, "appender", since, clock)["extra"]["probes"] == 1
    host = provider.host
    host.deploy("appender", replace(host.config("appender"), memory_mb=256))
    assert "probe_peak_memory_mb" not in window(provider, "appender", later, clock)["extra"]


def test_probes_wait_their_turn_and_a_new_size_is_probed_at_once(
    provider: LocalProvider, clock: MovableClock
) -> None:
    host = provider.host
    since = clock.now()
    assert host.invoke("slow", {"mb": 200, "wait": 1.0}).outcome == "oom"
    assert host.invoke("appender", {"mb": 150}).outcome == "oom"  # while the other is probed
    larger = {"mb": 300, "note": "a larger event, as JSON"}
    assert host.invoke("appender", larger).outcome == "oom"  # it takes the waiting one's place
    assert window(provider, "appender", since, clock)["extra"]["probe_pending"] == 1.0
    host.prober.wait(30.0)
    first = window(provider, "appender", since, clock)["extra"]
    assert first["probe_peak_memory_mb"] > 300  # the larger event's need
    assert first["probes"] == 1
    host.deploy("appender", replace(host.config("appender"), memory_mb=160))
    resized = clock.now()
    assert host.invoke("appender", {"mb": 300}).outcome == "oom"  # within every_s, new size
    assert window(provider, "appender", resized, clock)["extra"]["probe_pending"] == 1.0
    host.prober.wait(30.0)
    second = window(provider, "appender", resized, clock)["extra"]
    assert second["probe_memory_mb"] == 1280  # 8 x the 160 MB it was killed at now


def test_pending_is_bounded_in_time(provider: LocalProvider, clock: MovableClock) -> None:
    since = clock.now()
    assert provider.host.invoke("slow", {"mb": 200, "wait": 3.0}).outcome == "oom"
    assert window(provider, "slow", since, clock)["extra"]["probe_pending"] == 1.0
    clock.offset += 31.0  # past wait_s, the probe still running
    late = window(provider, "slow", since, clock)
    assert "probe_pending" not in late["extra"]
    assert oom_rule_fires(late)  # the rule goes ahead without the measurement
