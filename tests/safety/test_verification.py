"""Verification and rollback: changes that made things worse or cost more for nothing are undone."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeClock, FakeProvider, RecordingNotifier
from tests.safety.harness import WINDOW_S, healthy, make_daemon, oom
from tuner.cli import main as cli
from tuner.daemon.loop import Daemon
from tuner.decisions.verifying import VerifyPolicy
from tuner.domain.decisions import Decision
from tuner.domain.errors import ProviderError
from tuner.domain.lifecycle import State
from tuner.domain.model import FunctionConfig, FunctionRef
from tuner.store.audit import SqliteStore


@dataclass
class World:
    """One function that runs out of memory, a daemon over it, and what it reported."""

    store: SqliteStore
    provider: FakeProvider = field(default_factory=FakeProvider)
    clock: FakeClock = field(default_factory=FakeClock)
    notifier: RecordingNotifier = field(default_factory=RecordingNotifier)
    daemon: Daemon | None = None

    def __post_init__(self) -> None:
        self.ref = self.provider.add("f", FunctionConfig(memory_mb=256, timeout_s=30))
        self.provider.windows["f"] = oom(self.ref)
        self.daemon = make_daemon(
            [self.provider],
            self.store,
            self.clock,
            notifier=self.notifier,
            verify_policy=VerifyPolicy(windows=3),
        )

    def cycle(self, **window: Any) -> None:
        """Advance one window and run a cycle where the function sees ``window``."""
        if window:
            self.provider.windows["f"] = healthy(self.ref, **window)
        assert self.daemon is not None
        report = self.daemon.run_cycle()
        assert report.errors == []
        self.clock.advance(WINDOW_S)

    def first_change(self) -> Decision:
        """The change that tuner made for the OOMs."""
        return [d for d in self.store.decisions() if d.action == "more-memory" and d.applied][0]

    def rollbacks(self) -> list[Decision]:
        """The rollback decisions in the store."""
        return [d for d in self.store.decisions() if d.action == "rollback"]


@pytest.fixture
def world(tmp_path: Path) -> World:
    """A world whose store is a file, so that ``tuner explain`` can read it."""
    return World(SqliteStore(tmp_path / "tuner.db"))


def _explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    config = tmp_path / "tuner.yaml"
    config.write_text("store: tuner.db\n", encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["explain", "--json", "-c", str(config)]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


def test_a_change_that_raises_the_error_rate_is_rolled_back(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Errors jump from 5% to 50% after the change: undone, recorded, reported, explained."""
    world.cycle()
    assert world.provider.configs["f"].memory_mb == 512
    world.cycle(ooms=0, errors=50)

    assert world.provider.configs["f"].memory_mb == 256
    first = world.first_change()
    assert first.state is State.ROLLED_BACK and "made things worse" in first.why
    [undo] = world.rollbacks()
    assert undo.change is not None and (undo.change.before, undo.change.after) == (512, 256)
    assert undo.state is State.APPLIED and undo.undoes == first.id
    assert "made things worse" in undo.summary
    assert first.id in {d.id for d in world.notifier.sent}
    rows = {r["id"]: r for r in _explain(tmp_path, capsys)}
    assert rows[first.id]["state"] == "rolled-back"
    assert rows[first.id]["verdict"] == "apply"
    assert rows[undo.id]["action"] == "rollback"


def test_a_memory_fix_after_which_invocations_run_longer_is_kept(world: World) -> None:
    """p95 doubles after the change: the invocations killed early now run to their end.

    256 MB is known to fail; the longer duration is no reason to go back to it.
    """
    world.cycle()
    world.cycle(ooms=0, errors=0, duration_p95_ms=160.0 * 1.6)
    first = world.first_change()
    assert first.state is State.IMPROVED and "duration_p95_ms 80 -> 256" in first.why
    assert world.provider.configs["f"].memory_mb == 512
    assert world.rollbacks() == []


def test_a_longer_timeout_that_does_not_help_is_kept_and_the_next_step_follows(
    world: World,
) -> None:
    """Timeouts go on for 3 windows after a longer timeout: 30 s is known to be too short.

    The first window after the change may still hold invocations that began before it, so
    it cannot show that nothing changed and does not count.  The next step waits out the
    rule's 10-minute cooldown.
    """
    world.provider.windows["f"] = healthy(world.ref, timeouts=5, errors=5)
    world.cycle()
    assert world.provider.configs["f"].timeout_s == 45
    for _ in range(4):
        world.cycle()
    [first] = [d for d in world.store.decisions() if d.action == "longer-timeout" and d.applied]
    assert first.state is State.PARTIAL and "still failing" in first.why
    assert world.rollbacks() == []
    for _ in range(6):
        world.cycle()
    assert world.provider.configs["f"].timeout_s == 68, "the next step, after the cooldown"
    assert world.rollbacks() == []


def test_more_memory_that_still_fails_is_kept_not_rolled_back_to_a_size_known_to_fail(
    world: World,
) -> None:
    """OOMs go on at the new size: never undone to the size that failed; the next step follows."""
    for _ in range(5):
        world.cycle()
    first = world.first_change()
    assert first.state is State.PARTIAL and "still failing" in first.why
    assert world.rollbacks() == []
    assert world.provider.configs["f"].memory_mb == 512, "the cooldown holds the next step"
    for _ in range(6):
        world.cycle()
    assert world.provider.configs["f"].memory_mb == 1024, "the next step, after the cooldown"
    assert world.rollbacks() == []


def test_a_change_that_helped_is_kept_and_explained(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """OOMs stop after more memory: verified improved, nothing rolled back."""
    world.cycle()
    world.cycle(ooms=0)
    first = world.first_change()
    assert first.state is State.IMPROVED
    assert world.rollbacks() == []
    assert world.provider.configs["f"].memory_mb == 512
    rows = {r["id"]: r for r in _explain(tmp_path, capsys)}
    assert rows[first.id]["state"] == "improved"


def test_no_traffic_after_a_change_is_no_reason_to_roll_it_back(world: World) -> None:
    """Without invocations the change cannot be judged; it is kept, never undone on no data."""
    world.cycle()
    for _ in range(12):
        world.cycle(invocations=0, ooms=0, errors=0)
    assert world.provider.configs["f"].memory_mb == 512
    assert world.rollbacks() == []
    first = world.first_change()
    assert first.state is State.UNCHANGED
    assert "not enough traffic" in first.why


def test_a_failed_rollback_is_reported_and_tried_again(world: World) -> None:
    """The first rollback attempt fails; the next cycle undoes the change."""
    world.cycle()
    world.provider.faults = [ProviderError("access denied")]
    world.cycle(ooms=0, errors=50)
    assert world.provider.configs["f"].memory_mb == 512
    [failed] = world.rollbacks()
    assert failed.state is State.FAILED
    assert failed.id in {d.id for d in world.notifier.sent}
    world.cycle(ooms=0, errors=50)
    assert world.provider.configs["f"].memory_mb == 256
    assert world.first_change().state is State.ROLLED_BACK
    assert [d.state for d in world.rollbacks()] == [State.FAILED, State.APPLIED]


def test_the_windows_counted_are_kept_with_the_change(world: World, tmp_path: Path) -> None:
    """The count of judged windows lives in the change's own record and survives a restart."""
    world.cycle()
    world.cycle()  # may hold invocations from before the change: not counted
    world.cycle()
    first = world.first_change()
    assert (first.state, first.judged_windows) == (State.APPLIED, 1)
    world.store.close()
    world.store = SqliteStore(tmp_path / "tuner.db")
    assert world.first_change().judged_windows == 1
    world.daemon = make_daemon([world.provider], world.store, world.clock)
    world.cycle(ooms=0)
    assert (world.first_change().state, world.first_change().judged_windows) == (State.IMPROVED, 2)


def test_each_function_is_judged_on_its_own(tmp_path: Path) -> None:
    """Of two changed functions, only the one that got worse is rolled back."""
    provider = FakeProvider()
    clock = FakeClock()
    store = SqliteStore(tmp_path / "tuner.db")
    refs = [provider.add(n, FunctionConfig(memory_mb=256, timeout_s=30)) for n in ("a", "b")]
    for ref in refs:
        provider.windows[ref.name] = oom(ref)
    daemon = make_daemon([provider], store, clock)
    daemon.run_cycle()
    clock.advance(WINDOW_S)
    provider.windows["a"] = healthy(refs[0])
    provider.windows["b"] = healthy(refs[1], errors=60)
    daemon.run_cycle()
    assert {n: c.memory_mb for n, c in provider.configs.items()} == {"a": 512, "b": 256}
    verdicts = {d.ref: d.state for d in store.decisions() if d.action == "more-memory"}
    assert verdicts == {refs[0]: State.IMPROVED, refs[1]: State.ROLLED_BACK}
    assert FunctionRef("fake", "b") in {d.ref for d in store.decisions() if d.action == "rollback"}


def test_a_change_to_a_function_that_went_away_is_settled_not_kept_pending(world: World) -> None:
    """The function is deleted while its change is being verified: settled, not kept pending."""
    world.cycle()
    world.cycle()  # may hold invocations from before the change: not counted
    world.cycle()
    assert world.first_change().judged_windows == 1
    del world.provider.configs["f"]
    world.cycle()
    settled = world.first_change()
    assert settled.state is State.UNCHANGED
    assert "no longer exists" in settled.why
    assert world.store.pending_verification() == []
