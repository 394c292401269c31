"""Silence is no recovery: only data showing health resolves a finding."""

from __future__ import annotations

from pathlib import Path

from tests.fakes import FakeClock, FakeProvider, RecordingNotifier
from tuner.daemon.loop import Daemon, DaemonSettings
from tuner.domain.model import DependencyFacts, FunctionConfig, WindowFacts
from tuner.engine import load_rules
from tuner.store.audit import SqliteStore

ROOT = Path(__file__).resolve().parents[2]


def _daemon() -> tuple[Daemon, FakeProvider, RecordingNotifier, FakeClock]:
    provider = FakeProvider()
    provider.add("checkout", FunctionConfig(memory_mb=256, timeout_s=3.0))
    notifier, clock = RecordingNotifier(), FakeClock()
    daemon = Daemon(
        providers=[provider],
        rules=load_rules([ROOT / "rules" / "default.yaml"]),
        store=SqliteStore(":memory:"),
        notifier=notifier,
        clock=clock,
        settings=DaemonSettings(window_s=60.0),
    )
    return daemon, provider, notifier, clock


def _window(provider: FakeProvider, invocations: int, calls: int, errors: int) -> None:
    ref = provider.ref("checkout")
    deps = {"payments-api": DependencyFacts("payments-api", calls, errors, 100.0)} if calls else {}
    provider.windows["checkout"] = WindowFacts(
        ref, 0, 0, invocations=invocations, errors=min(errors, invocations), dependencies=deps
    )


def _resolved(notifier: RecordingNotifier) -> list[str]:
    return [d.rule for d in notifier.sent if d.action == "resolved"]


def test_no_traffic_and_no_calls_keep_a_dependency_outage_open() -> None:
    daemon, provider, notifier, clock = _daemon()
    _window(provider, invocations=20, calls=20, errors=20)
    daemon.run_cycle()
    assert [d.rule for d in notifier.sent] == ["dependency-down"]
    for invocations in (0, 0, 5):  # traffic stops, then comes back without calling the dependency
        clock.advance(60)
        _window(provider, invocations=invocations, calls=0, errors=0)
        daemon.run_cycle()
    assert _resolved(notifier) == []
    clock.advance(60)
    _window(provider, invocations=20, calls=20, errors=0)  # calls that succeed: healthy
    daemon.run_cycle()
    assert _resolved(notifier) == ["dependency-down"]
