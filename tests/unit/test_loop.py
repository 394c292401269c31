"""The loop over in-memory ports: what each mode does, resolution, notification, reloading."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import FakeClock, FakeProvider, RecordingNotifier
from tuner.daemon.loop import Daemon, DaemonSettings
from tuner.daemon.reloading import RuleSource
from tuner.domain.lifecycle import State
from tuner.domain.model import (
    DependencyFacts,
    FunctionConfig,
    FunctionRef,
    Mode,
    WindowFacts,
)
from tuner.engine import load_rules
from tuner.notify.alerts import Alert
from tuner.notify.proposals import propose
from tuner.store.audit import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
X = FunctionRef("fake", "x")


def world(
    mode: Mode = Mode.APPLY,
    store: SqliteStore | None = None,
    rules: Path = ROOT / "rules" / "default.yaml",
) -> tuple[Daemon, FakeProvider, RecordingNotifier, FakeClock]:
    provider = FakeProvider()
    provider.add("oomer", FunctionConfig(memory_mb=128, timeout_s=3.0))
    provider.add("down-a", FunctionConfig(memory_mb=256, timeout_s=3.0))
    provider.add("down-b", FunctionConfig(memory_mb=256, timeout_s=3.0))
    provider.add("healthy", FunctionConfig(memory_mb=128, timeout_s=3.0))
    provider.windows["oomer"] = WindowFacts(
        X, 0, 0, invocations=20, errors=6, ooms=6, timeouts=0, peak_memory_mb=128.0
    )
    outage = {"orders-db": DependencyFacts("orders-db", 20, 20, 3.0)}
    provider.windows["down-a"] = WindowFacts(
        X, 0, 0, invocations=20, errors=20, ooms=0, timeouts=0, dependencies=outage
    )
    provider.windows["down-b"] = provider.windows["down-a"]
    provider.windows["healthy"] = WindowFacts(
        X, 0, 0, invocations=20, errors=0, ooms=0, timeouts=0, peak_memory_mb=100.0
    )
    notifier = RecordingNotifier()
    clock = FakeClock()
    daemon = Daemon(
        providers=[provider],
        rules=load_rules([rules]),
        store=store or SqliteStore(":memory:"),
        notifier=notifier,
        clock=clock,
        settings=DaemonSettings(mode=mode, window_s=60.0),
    )
    return daemon, provider, notifier, clock


def test_apply_mode_fixes_and_verifies() -> None:
    daemon, provider, notifier, clock = world()
    report = daemon.run_cycle()
    assert provider.configs["oomer"].memory_mb == 256
    assert provider.configs["healthy"].memory_mb == 128
    assert [d.ref.name for d in report.decisions if d.state is State.APPLIED] == ["oomer"]
    # the outage: one decision per function, grouped by the dependency, nothing changed
    outage = [d for d in report.decisions if d.rule == "dependency-down"]
    assert {d.group for d in outage} == {"dependency:orders-db"}
    assert all(d.state is State.NOTIFIED and d.change is None for d in outage)
    # advice about what several functions share is the message's, never repeated per decision
    assert all("at once" not in d.advice for d in outage)
    alerts = [Alert.from_decision(d) for d in outage]
    assert sum("failed for 2 functions at once" in p for p in propose(alerts)) == 1
    assert {d.id for d in notifier.sent} >= {d.id for d in outage}

    provider.windows["oomer"] = WindowFacts(
        X, 0, 0, invocations=20, errors=0, ooms=0, timeouts=0, peak_memory_mb=180.0
    )
    clock.advance(60)
    report = daemon.run_cycle()
    [verified] = report.verified
    assert verified.state is State.IMPROVED
    assert "oom_rate 0.3 -> 0" in verified.why
    resolved = [d for d in report.decisions if d.action == "resolved"]
    assert [d.ref.name for d in resolved] == ["oomer"]
    assert len(provider.applied) == 1


@pytest.mark.parametrize(
    ("mode", "outcome"), [(Mode.OBSERVE, State.OBSERVED), (Mode.RECOMMEND, State.RECOMMENDED)]
)
def test_observe_and_recommend_change_nothing(mode: Mode, outcome: State) -> None:
    daemon, provider, notifier, _ = world(mode)
    report = daemon.run_cycle()
    assert provider.applied == []
    [oom] = [d for d in report.decisions if d.rule == "oom"]
    assert oom.state is outcome
    assert (oom in notifier.sent) is (mode is Mode.RECOMMEND)


def test_every_decision_is_recorded_and_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "tuner.db"
    daemon, _, _, _ = world(store=SqliteStore(db))
    report = daemon.run_cycle()
    daemon.store.close()
    reopened = SqliteStore(db)
    assert sorted(d.id for d in reopened.decisions()) == sorted(d.id for d in report.decisions)
    oom = next(d for d in reopened.decisions() if d.rule == "oom")
    assert oom.change is not None and (oom.change.before, oom.change.after) == (128, 256)
    assert oom.facts["ooms"] == 6.0 and oom.state is State.APPLIED


def test_a_streak_persists_across_restarts(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: slow-oom\n    when: ooms > 0.0\n    for: 2\n    actions: [{action: more-memory}]\n"
    )
    db = tmp_path / "tuner.db"
    daemon, provider, _, _ = world(store=SqliteStore(db), rules=rules)
    daemon.run_cycle()
    assert provider.applied == []
    daemon.store.close()
    again = Daemon(
        providers=[provider], rules=load_rules([rules]), store=SqliteStore(db), clock=FakeClock(2e6)
    )
    again.run_cycle()
    assert [name for name, _ in provider.applied] == ["oomer"]


def test_a_broken_rule_file_keeps_the_last_good_rules(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(
        "rules:\n  - name: oom\n    when: ooms > 0.0\n    actions: [{action: more-memory}]\n"
    )
    source = RuleSource([path])
    assert [r.name for r in source().rules] == ["oom"]
    path.write_text(
        "rules:\n  - name: oom\n    when: ooms >\n    actions: [{action: more-memroy}]\n"
    )
    assert source.reload() is False
    assert [r.name for r in source().rules] == ["oom"]
    assert source.last_error is not None and "team.yaml:3" in str(source.last_error)
    path.write_text(
        "rules:\n  - name: timeout\n    when: timeouts > 0.0\n    actions: [{action: longer-timeout}]\n"
    )
    assert source.reload(force=True) is True
    assert [r.name for r in source().rules] == ["timeout"] and source.last_error is None
