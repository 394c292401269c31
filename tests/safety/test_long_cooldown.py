"""A cooldown longer than a day is honoured: the guard reads history as far back as it needs."""

from __future__ import annotations

from tests.fakes import FakeClock, FakeProvider
from tuner.daemon.loop import Daemon, DaemonSettings
from tuner.domain.model import FunctionConfig, WindowFacts
from tuner.engine import parse_rules
from tuner.store.audit import SqliteStore

RULES = """
rules:
  - name: oom
    when: ooms > 0.0
    cooldown: 7d
    actions: [{action: more-memory}]
"""


def test_a_seven_day_cooldown_holds_after_25_hours() -> None:
    provider = FakeProvider()
    ref = provider.add("f", FunctionConfig(memory_mb=256, timeout_s=30))
    provider.windows["f"] = WindowFacts(
        ref, 0, 0, invocations=100, errors=5, ooms=5, peak_memory_mb=250.0
    )
    clock = FakeClock()
    store = SqliteStore(":memory:")
    daemon = Daemon(
        providers=[provider],
        rules=parse_rules(RULES, "team.yaml"),
        store=store,
        clock=clock,
        settings=DaemonSettings(window_s=60.0),
    )
    daemon.run_cycle()
    assert provider.configs["f"].memory_mb == 512
    clock.advance(25 * 3600)
    report = daemon.run_cycle()
    assert provider.configs["f"].memory_mb == 512
    [held] = [d for d in report.decisions if d.rule == "oom"]
    assert "cooldown" in held.why and held.state.value == "skipped"
    clock.advance(6 * 86_400)
    daemon.run_cycle()
    assert provider.configs["f"].memory_mb == 1024
