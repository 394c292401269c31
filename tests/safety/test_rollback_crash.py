"""A crash between a rollback going live and its record: the restart completes both records."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import FakeClock, FakeProvider
from tests.safety.harness import WINDOW_S, healthy, make_daemon, oom
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.model import FunctionConfig
from tuner.store.audit import SqliteStore


class CrashingStore(SqliteStore):
    """A store whose process 'dies' (raises) when the reversed change is to be marked."""

    def record(self, decision: Decision) -> None:
        if decision.state is State.ROLLED_BACK:
            raise SystemExit("killed after the rollback went live and was recorded")
        super().record(decision)


def test_a_rollback_interrupted_after_it_went_live_is_completed_on_restart(tmp_path: Path) -> None:
    db = tmp_path / "tuner.db"
    provider = FakeProvider()
    ref = provider.add("f", FunctionConfig(memory_mb=256, timeout_s=30))
    clock = FakeClock()
    provider.windows["f"] = oom(ref)
    first = make_daemon([provider], CrashingStore(db), clock)
    first.run_cycle()
    assert provider.configs["f"].memory_mb == 512
    clock.advance(WINDOW_S)
    provider.windows["f"] = healthy(ref, errors=60)  # worse: the change is rolled back
    with pytest.raises(SystemExit):
        first.run_cycle()
    assert provider.configs["f"].memory_mb == 256, "the rollback went live before the crash"

    store = SqliteStore(db)
    restarted = make_daemon([provider], store, clock)
    [settled] = restarted.reconcile()
    change = next(d for d in store.decisions() if d.action == "more-memory")
    assert settled.id == change.id and settled.state is State.ROLLED_BACK
    assert change.state is State.ROLLED_BACK and "made things worse" in change.why
    [undo] = [d for d in store.decisions() if d.action == "rollback"]
    assert (undo.state, undo.undoes) == (State.APPLIED, change.id)
    assert store.open_intents() == []
    clock.advance(WINDOW_S)
    provider.windows["f"] = healthy(ref)
    restarted.run_cycle()
    assert len(provider.applied) == 2, "neither the change nor the rollback is applied twice"
