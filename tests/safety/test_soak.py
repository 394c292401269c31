"""A soak on a virtual clock: three simulated days of churning functions, memory stays flat."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.safety.harness import default_rules
from tests.safety.soak import CYCLES_PER_DAY, WINDOW_S, Soak
from tuner.domain.decisions import Decision, Intent
from tuner.domain.lifecycle import IntentState, State
from tuner.domain.model import Change, FunctionRef, Knob, Mode, Severity
from tuner.store.audit import SqliteStore

BLOCK_GROWTH_LIMIT = 2_000
"""Memory blocks the interpreter may gain from the end of day one to the end of day three."""
RSS_GROWTH_LIMIT = 4 * 2**20


@pytest.fixture
def soak(tmp_path: Path) -> Iterator[Soak]:
    """A soak over a store in a temporary folder, closed afterwards."""
    running = Soak(tmp_path / "soak.db")
    try:
        yield running
    finally:
        running.close()


def test_memory_and_state_stay_flat_over_three_simulated_days(
    soak: Soak, record_property: Callable[[str, object], None]
) -> None:
    """After a warm-up day, two more days of churn add no heap, no RSS and no unbounded state."""
    soak.run(CYCLES_PER_DAY)
    day_one = soak.sample()
    soak.run(2 * CYCLES_PER_DAY)
    day_three = soak.sample()

    figures = {
        "simulated_hours": soak.cycles * WINDOW_S / 3600,
        "functions_seen": soak.born,
        "changes_applied": soak.applied,
        "blocks_day1": day_one.blocks,
        "blocks_day3": day_three.blocks,
        "rss_day1_kib": day_one.rss_bytes // 1024,
        "rss_day3_kib": day_three.rss_bytes // 1024,
        "streaks_day3": day_three.streaks,
        "state_keys_day3": day_three.state_keys,
    }
    for name, value in figures.items():
        record_property(name, value)
    print("soak figures:", figures)

    assert soak.born > 3 * soak.live, "the fleet churned: most functions seen are gone"
    assert soak.applied > 100, "tuner kept acting throughout"
    assert day_three.blocks - day_one.blocks < BLOCK_GROWTH_LIMIT, figures
    assert day_three.rss_bytes - day_one.rss_bytes < RSS_GROWTH_LIMIT, figures
    assert day_three.streaks <= soak.live, "streaks are kept for live functions only"
    assert day_three.state_keys <= 1 + soak.live * len(default_rules().rules)
    assert day_three.open_intents == 0
    live = {soak.provider.ref(name) for name in soak.provider.configs}
    assert {d.ref for d in soak.store.pending_verification()} <= live


def test_the_audit_store_keeps_a_bounded_history(tmp_path: Path) -> None:
    """With a retention of one day, the store holds about a day of decisions, however long it
    runs, and its file stops growing; changes still being verified are kept."""
    soak = Soak(tmp_path / "soak.db", live=10)
    soak.daemon.settings = replace(soak.daemon.settings, retention_s=86_400.0)
    try:
        soak.run(CYCLES_PER_DAY + 12)
        rows_day1 = len(soak.store.decisions(limit=10**6))
        size_day1 = (tmp_path / "soak.db").stat().st_size
        soak.run(2 * CYCLES_PER_DAY)
        rows_day3 = len(soak.store.decisions(limit=10**6))
        size_day3 = (tmp_path / "soak.db").stat().st_size
        oldest = soak.store.decisions(limit=10**6)[0].time
    finally:
        soak.close()
    print("store rows day 1 / day 3:", rows_day1, rows_day3, "bytes:", size_day1, size_day3)
    assert rows_day3 < 1.5 * rows_day1
    assert size_day3 < 1.5 * size_day1
    assert oldest >= soak.clock.now() - 86_400.0 - 3_600.0 - WINDOW_S


def test_pruning_keeps_unfinished_work(tmp_path: Path) -> None:
    """Old decisions go, except a change still being verified and one whose intent is open."""
    store = SqliteStore(tmp_path / "tuner.db")
    ref = FunctionRef("fake", "f")
    change = Change(Knob.MEMORY_MB, 256, 512)

    def old(id_: str, state: State) -> Decision:
        return Decision(
            id_, 1.0, ref, "oom", "more-memory", Severity.CRITICAL, Mode.APPLY, state, change=change
        )

    try:
        store.record(old("skipped", State.SKIPPED))
        store.record(old("verified", State.IMPROVED))
        store.record(old("pending", State.APPLIED))
        store.begin_intent(Intent("i", "open", ref, (change,), 1.0), old("open", State.APPLYING))
        store.begin_intent(Intent("j", "done", ref, (change,), 1.0), old("done", State.APPLYING))
        store.finish_intent("j", IntentState.DONE, old("done", State.IMPROVED))
        assert store.prune(before=100.0) == 3
        assert sorted(d.id for d in store.decisions()) == ["open", "pending"]
        assert [i.id for i in store.open_intents()] == ["i"]
    finally:
        store.close()
