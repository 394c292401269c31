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


def test_a_failing_trickle_is_no_recovery_either() -> None:
    """Traffic drops to about a call a window, every call still failing: the alert stays open."""
    daemon, provider, notifier, clock = _daemon()
    _window(provider, invocations=20, calls=20, errors=20)
    daemon.run_cycle()
    for calls in (1, 2, 1, 1):  # too few calls for the condition, every one still failing
        clock.advance(60)
        _window(provider, invocations=calls, calls=calls, errors=calls)
        daemon.run_cycle()
    assert _resolved(notifier) == []
    clock.advance(60)
    _window(provider, invocations=2, calls=2, errors=0)  # succeeding, but too few to judge
    daemon.run_cycle()
    assert _resolved(notifier) == []
    clock.advance(60)
    _window(provider, invocations=6, calls=6, errors=0)  # enough calls, all succeed
    daemon.run_cycle()
    assert _resolved(notifier) == ["dependency-down"]


def test_rules_resolve_only_on_enough_traffic_by_default() -> None:
    """Without a ``resolve_when`` of its own, a rule resolves in a window of 5 invocations or more."""
    daemon, provider, notifier, clock = _daemon()
    ref = provider.ref("checkout")
    provider.windows["checkout"] = WindowFacts(ref, 0, 0, 20, errors=18, ooms=0, timeouts=0)
    daemon.run_cycle()
    assert [d.rule for d in notifier.sent] == ["errors"]
    for invocations, resolved in ((4, []), (5, ["errors"])):
        clock.advance(60)
        provider.windows["checkout"] = WindowFacts(ref, 0, 0, invocations, 0, ooms=0, timeouts=0)
        daemon.run_cycle()
        assert _resolved(notifier) == resolved
