"""A soak on a virtual clock: three simulated days of churning functions, memory stays flat."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.safety.harness import default_rules
from tests.safety.soak import CYCLES_PER_DAY, WINDOW_S, Soak

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
