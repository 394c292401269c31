"""Trial actions: try the next size on a share of real traffic, take the cheapest once found.

The facts they read (``measured_trial_mb``, ``measured_excess_cost``) are computed from the
provider's measurements as the facts step does; right-sizing never lowers memory below
the cheapest size measured when a smaller one cost more on real traffic.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tuner.domain.model import FunctionConfig, Knob, Lasting, Limits
from tuner.engine.actions import CheapestMemory, LessMemory, TryMemory
from tuner.engine.measured import cost_facts, search

AWS = Limits()


def cfg(memory_mb: int = 1000, trial: int | None = 0) -> FunctionConfig:
    return FunctionConfig(memory_mb=memory_mb, timeout_s=60.0, memory_trial_mb=trial)


def facts(memory_mb: float = 1000.0, **extra: float) -> dict[str, Any]:
    """A CPU-bound function at ``memory_mb`` whose need is 400 MB, with measurements."""
    out: dict[str, Any] = {
        "memory_mb": memory_mb,
        "invocations": 500.0,
        "window_s": 900.0,
        "ooms": 0.0,
        "peak_memory_mb": 400.0,
        "duration_max_ms": 3000.0,
        "timeout_ms": 60_000.0,
        "extra": {"cpu_time_ms": 1000.0, "duration_avg_ms": 1800.0, **extra},
    }
    out.update(cost_facts(out, AWS))
    return out


def test_the_facts_say_where_the_search_stands() -> None:
    assert facts()["measured_trial_mb"] is None  # nothing measured: nothing to go by
    today = facts(cheapest_measured_memory_mb=1000.0, cheapest_measured_cost_ratio=1.0)
    assert today["measured_trial_mb"] == 1500.0 and today["measured_excess_cost"] == 0.0
    assert today["cpu_time_share"] == pytest.approx(1000 * 1769 / 1000 / 1800)
    done = facts(
        cheapest_measured_memory_mb=1900.0,
        cheapest_measured_cost_ratio=0.8,
        measured_below_mb=1800.0,
        measured_above_mb=2000.0,
    )
    assert done["measured_trial_mb"] is None
    assert done["measured_excess_cost"] == pytest.approx(0.25)
    # 300 MB cannot hold the 400 MB peak: the least it may run at is the cheapest allowed
    # (the cost rises above 300 MB), so nothing is left to try, and the saving there is
    # predicted, never above the one measured at 300 MB.
    below_need = facts(
        cheapest_measured_memory_mb=300.0, cheapest_measured_cost_ratio=0.5, measured_above_mb=320.0
    )
    assert below_need["measured_trial_mb"] is None
    assert 0.0 < below_need["measured_excess_cost"] <= 1.0


def test_below_the_floor_the_cheapest_size_allowed_is_the_floor() -> None:
    measured = {
        "cheapest_measured_memory_mb": 1000.0,
        "cheapest_measured_cost_ratio": 0.6,
        "measured_below_mb": 900.0,
        "measured_above_mb": 1100.0,
    }
    today = facts(3000.0, **measured)
    found = search(today, cpu_scales=True, cap_mb=AWS.memory_max_mb)
    assert found is not None and found.floor_mb > 1000.0  # 30% slower than today at most
    assert found.target_mb == found.floor_mb and found.next_mb is None
    assert today["measured_excess_cost"] == pytest.approx(1 / 0.6 - 1)  # bounded by 1000 MB's
    plan = CheapestMemory().plan(cfg(3000), AWS, today)
    assert plan.change is not None and plan.change.after == math.ceil(found.floor_mb)
    assert "the least it may run at, above the cheapest size measured (1000 MB)" in plan.summary
    # There, the same CPU time takes longer; the fastest mean of the lookback keeps the floor.
    slower = {"duration_avg_ms": 800.0 + 1000.0 * 1769.0 / plan.change.after}
    there = facts(
        float(plan.change.after), lookback_duration_avg_ms_min=1800.0, **slower, **measured
    )
    assert there["measured_excess_cost"] == 0.0  # the symptom is gone: it is not moved again
    assert CheapestMemory().plan(cfg(plan.change.after), AWS, there).change is None


def test_a_trial_runs_the_next_size_for_so_many_invocations() -> None:
    plan = TryMemory(invocations=30).plan(
        cfg(), AWS, facts(cheapest_measured_memory_mb=1000.0, cheapest_measured_cost_ratio=1.0)
    )
    assert plan.change is not None
    assert plan.change.knob is Knob.MEMORY_TRIAL_MB and plan.change.after == 1500
    assert plan.change.lasting == Lasting(invocations=30)
    assert "memory stays 1000 MB" in plan.summary


@pytest.mark.parametrize(
    ("config", "extra", "reason"),
    [
        (cfg(trial=None), {"cheapest_measured_memory_mb": 1000.0}, "cannot try a size"),
        (cfg(trial=1500), {"cheapest_measured_memory_mb": 1000.0}, "under way"),
        (cfg(), {}, "no size left to try"),
        (
            cfg(),
            {
                "cheapest_measured_memory_mb": 1000.0,
                "measured_below_mb": 950.0,
                "measured_above_mb": 1050.0,
            },
            "no size left to try",
        ),
    ],
)
def test_no_trial_when_it_cannot_be_run_or_is_not_needed(
    config: FunctionConfig, extra: dict[str, float], reason: str
) -> None:
    plan = TryMemory().plan(config, AWS, facts(**extra))
    assert plan.change is None and reason in plan.reason


def test_the_cheapest_size_is_taken_once_bracketed_and_worth_it() -> None:
    bracketed = {
        "cheapest_measured_memory_mb": 1900.0,
        "measured_below_mb": 1800.0,
        "measured_above_mb": 2000.0,
    }
    plan = CheapestMemory().plan(cfg(), AWS, facts(cheapest_measured_cost_ratio=0.6, **bracketed))
    assert plan.change is not None and (plan.change.before, plan.change.after) == (1000, 1900)
    assert "costs 40% less" in plan.summary
    small = CheapestMemory().plan(cfg(), AWS, facts(cheapest_measured_cost_ratio=0.97, **bracketed))
    assert small.change is None and "saving below 5%" in small.reason
    open_above = {**bracketed, "measured_above_mb": 2800.0}
    searching = CheapestMemory().plan(
        cfg(), AWS, facts(cheapest_measured_cost_ratio=0.6, **open_above)
    )
    assert searching.change is None and "still measuring" in searching.reason


def test_right_sizing_stops_at_the_cheapest_size_when_smaller_ones_cost_more() -> None:
    # 400 MB peak at 3000 MB: the need alone would allow far less.
    lookback = {"lookback_peak_memory_mb": 400.0, "lookback_days": 14.0}
    free = LessMemory(margin=0.1, min_saving=0.1, max_slowdown=4.0).plan(
        cfg(3000), AWS, facts(3000.0, **lookback)
    )
    assert free.change is not None and free.change.after < 1500
    measured = {
        **lookback,
        "cheapest_measured_memory_mb": 1900.0,
        "cheapest_measured_cost_ratio": 0.9,
        "measured_below_mb": 1200.0,
    }
    bounded = LessMemory(margin=0.1, min_saving=0.1, max_slowdown=4.0).plan(
        cfg(3000), AWS, facts(3000.0, **measured)
    )
    assert bounded.change is not None and bounded.change.after == 1900
    assert "smaller sizes cost more on real traffic" in bounded.summary
    at_it = LessMemory(margin=0.1, min_saving=0.1, max_slowdown=4.0).plan(
        cfg(1900), AWS, facts(1900.0, **measured)
    )
    assert at_it.change is None and "cost more per invocation" in at_it.reason
