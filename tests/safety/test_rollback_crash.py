"""A crash between a rollback going live and its record: the restart completes both records."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import FakeClock, FakeProvider
from tests.safety.harness import WINDOW_S, healthy, make_daemon, oom
from tuner.model import FunctionConfig, Outcome, Verification
from tuner.store import SqliteStore


class CrashingStore(SqliteStore):
    """A store whose process 'dies' (raises) when the reversed change is to be marked."""

    def set_outcome(
        self,
        decision_id: str,
        outcome: Outcome | None = None,
        verification: Verification | None = None,
        reason: str | None = None,
    ) -> None:
        if outcome is Outcome.ROLLED_BACK:
            raise SystemExit("killed after the rollback went live and was recorded")
        super().set_outcome(decision_id, outcome, verification, reason)


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
    assert settled.action == "rollback" and settled.outcome is Outcome.ROLLED_BACK
    change = next(d for d in store.decisions() if d.action == "more-memory")
    assert (change.outcome, change.verification) == (Outcome.ROLLED_BACK, Verification.WORSE)
    assert store.open_intents() == []
    clock.advance(WINDOW_S)
    provider.windows["f"] = healthy(ref)
    restarted.run_cycle()
    assert len(provider.applied) == 2, "neither the change nor the rollback is applied twice"
