"""The ``trace`` action on the local host for real: counted, timed, restarts, people's changes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_world import WallClock, traced_host

from tuner.cli.explaining import decision_line, history
from tuner.daemon.loop import Daemon, DaemonSettings
from tuner.decisions.verifying import ENDED
from tuner.domain.lifecycle import State
from tuner.domain.model import Change, Knob, Lasting
from tuner.engine import parse_rules
from tuner.providers.local.provider import LocalProvider
from tuner.store.audit import SqliteStore

FLAKY = (
    "def handler(event, context):\n"
    "    if event.get('fail'):\n"
    "        raise ValueError('bad record')\n"
    "    return 'ok'\n"
)

RULES = """
version: 1
rules:
  - name: trace-failures
    description: A failing function has no traces
    when: errors > 0.0 && !has(extra.traced_invocations)
    actions:
      - action: trace
        invocations: 3
    severity: info
    cooldown: 1h
"""


def _write(app: Path, tracing: str = "{mode: off}") -> None:
    folder = app / "functions" / "flaky"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function.yaml").write_text(f"memory_mb: 128\ntimeout_s: 5\ntracing: {tracing}\n")
    (folder / "handler.py").write_text(FLAKY)


def _provider(tmp_path: Path) -> LocalProvider:
    state = tmp_path / "state"
    host = traced_host(tmp_path / "app", state, max_workers_per_function=1)
    provider = LocalProvider(host, WallClock(), http_port=None, traffic=False)
    provider.start()
    return provider


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalProvider]:
    """A started local provider over one function that traces nothing by itself."""
    _write(tmp_path / "app")
    provider = _provider(tmp_path)
    yield provider
    provider.close()


def _traced(provider: LocalProvider) -> int:
    tracing = provider.host.tracing
    assert tracing is not None
    return len(tracing.store.traces("flaky"))


def _switch(provider: LocalProvider, lasting: Lasting) -> None:
    [target] = provider.targets()
    provider.apply(target, [Change(Knob.TRACING, 0.0, 1.0, lasting)], reason="test")


def test_a_rule_traces_the_next_three_invocations_then_the_decision_expires(
    local: LocalProvider, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "tuner.db")
    daemon = Daemon(
        providers=[local],
        rules=parse_rules(RULES, "trace.yaml"),
        store=store,
        settings=DaemonSettings(window_s=30.0),
    )
    assert local.host.invoke("flaky", {"fail": True}).outcome == "error"
    [decision] = daemon.run_cycle().decisions
    assert decision.state is State.APPLIED and decision.action == "trace"
    assert decision.change == Change(Knob.TRACING, 0.0, 1.0, Lasting(invocations=3))
    assert "every invocation for the next 3 invocations" in decision.summary
    assert local.read(decision.ref).tracing == 1.0 and _traced(local) == 0

    for _ in range(4):
        assert local.host.invoke("flaky", {}).outcome == "ok"
    assert _traced(local) == 3  # the next three, and not the fourth
    assert local.read(decision.ref).tracing == 0.0

    report = daemon.run_cycle()
    # the window has traces now: the rule no longer holds and nothing is traced again
    assert [d.action for d in report.decisions] == ["resolved"]
    [expired] = report.verified
    assert expired.id == decision.id and expired.state is State.EXPIRED
    assert expired.why == ENDED
    recorded = next(d for d in history(store, "flaky", 10) if d.id == decision.id)
    assert recorded.state is State.EXPIRED and "expired" in decision_line(recorded)
    store.close()


def test_a_timed_switch_ends_by_itself(local: LocalProvider) -> None:
    _switch(local, Lasting(seconds=1.0))
    local.host.invoke("flaky", {})
    assert _traced(local) == 1
    time.sleep(1.1)
    local.host.invoke("flaky", {})
    assert _traced(local) == 1
    [target] = local.targets()
    assert target.config.tracing == 0.0


def test_a_restart_keeps_the_count_and_never_leaves_tracing_on(tmp_path: Path) -> None:
    _write(tmp_path / "app")
    provider = _provider(tmp_path)
    _switch(provider, Lasting(invocations=2))
    provider.host.invoke("flaky", {})
    provider.close()  # a crash or a restart between the invocations

    provider = _provider(tmp_path)
    try:
        assert provider.targets()[0].config.tracing == 1.0
        provider.host.invoke("flaky", {})
        provider.host.invoke("flaky", {})
        assert _traced(provider) == 2  # one before the restart, one after; not the third
        _switch(provider, Lasting(seconds=0.5))
    finally:
        provider.close()
    time.sleep(0.6)  # the switch's time runs out while tuner is down

    provider = _provider(tmp_path)
    try:
        assert provider.targets()[0].config.tracing == 0.0
        provider.host.invoke("flaky", {})
        assert _traced(provider) == 2
    finally:
        provider.close()


def test_a_persons_change_to_tracing_stands(tmp_path: Path) -> None:
    _write(tmp_path / "app", tracing="{mode: off}")
    provider = _provider(tmp_path)
    _switch(provider, Lasting(seconds=0.5))
    provider.close()
    _write(tmp_path / "app", tracing="{mode: full}")  # a person wants every invocation traced

    provider = _provider(tmp_path)
    try:
        assert provider.targets()[0].config.tracing == 0.0  # the switch is gone, theirs stands
        time.sleep(0.6)  # past the switch's end: nothing goes back to "off"
        for _ in range(2):
            provider.host.invoke("flaky", {})
        assert _traced(provider) == 2
        assert not (tmp_path / "state" / "traces" / "switches.json").read_text().count("flaky")
    finally:
        provider.close()


def test_a_switch_off_ends_it_and_a_bad_share_is_refused(local: LocalProvider) -> None:
    _switch(local, Lasting(invocations=5))
    [target] = local.targets()
    local.apply(target, [Change(Knob.TRACING, 1.0, 0.0)], reason="a person rolls it back")
    local.host.invoke("flaky", {})
    assert _traced(local) == 0
    with pytest.raises(Exception, match="not a share"):
        local.apply(target, [Change(Knob.TRACING, 0.0, 2.0)])


def test_a_decision_whose_switch_ran_out_while_tuner_was_down_expires_after_the_restart(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "app")
    rules = parse_rules(RULES.replace("invocations: 3", "for: 1s"), "trace.yaml")
    provider, store = _provider(tmp_path), SqliteStore(tmp_path / "tuner.db")
    try:
        daemon = Daemon(
            providers=[provider], rules=rules, store=store, settings=DaemonSettings(window_s=30.0)
        )
        provider.host.invoke("flaky", {"fail": True})
        [decision] = daemon.run_cycle().decisions
        assert decision.state is State.APPLIED
    finally:
        provider.close()  # tuner stops with tracing switched on
        store.close()
    time.sleep(1.1)

    provider, store = _provider(tmp_path), SqliteStore(tmp_path / "tuner.db")
    try:
        provider.host.invoke("flaky", {})
        assert _traced(provider) == 0  # the host ended the switch by itself
        daemon = Daemon(
            providers=[provider], rules=rules, store=store, settings=DaemonSettings(window_s=30.0)
        )
        report = daemon.run_cycle()
        [expired] = report.verified
        assert (expired.id, expired.state) == (decision.id, State.EXPIRED)
        # the failing window still shows no traces, but the rule's cooldown holds it back
        assert all(d.state is State.SKIPPED for d in report.decisions if d.action == "trace")
        assert provider.targets()[0].config.tracing == 0.0
    finally:
        provider.close()
        store.close()
