"""The search for the cheapest size on real traffic, on cost curves drawn at random.

Each curve falls, then rises, with memory (or only rises, or only falls); the search
measures one size per step, as trials on real traffic would, and must end on a size that
costs within 2% of the curve's minimum over the sizes allowed, in few steps.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from tuner.engine.measured import CLOSE, STEP, Measured, measured, measured_floor, next_trial

Curve = Callable[[float], float]


def found(costs: dict[float, float], today: float) -> Measured:
    """What a provider reports of the sizes measured (as the sim's MeasuredSizes does)."""
    cheapest = min(costs, key=lambda m: costs[m])
    below = [m for m in costs if m < cheapest]
    above = [m for m in costs if m > cheapest]
    return Measured(
        cheapest,
        costs[cheapest] / costs[today] if today in costs else None,
        max(below) if below else None,
        min(above) if above else None,
    )


def search(curve: Curve, start: float, floor: float, cap: float) -> tuple[float, int]:
    """Run the search from ``start``; return the cheapest size measured and the trials run."""
    costs = {start: curve(start)}
    trials = 0
    while (size := next_trial(found(costs, start), floor, cap)) is not None:
        assert floor <= size <= cap and size not in costs
        costs[size] = curve(size)
        trials += 1
        assert trials < 40, "the search does not end"
    return found(costs, start).cheapest_mb, trials


def lambda_like(rng: random.Random) -> Curve:
    """Cost per invocation of a function whose runtime competes with its handler for CPU."""
    o, cpu, io = rng.uniform(0.0, 0.3), rng.uniform(50, 3000), rng.uniform(1, 1500)

    def cost(m: float) -> float:
        s = m / 1769.0
        share = min(1.0, s * s / (s + o) if o else s)
        return m * (io + cpu / share)

    return cost


def convex(rng: random.Random) -> Curve:
    """``a + b m + c / m``: a falling part and a rising part in any proportion."""
    a, b, c = rng.uniform(0, 10), rng.uniform(0.0, 0.01), rng.uniform(0, 20_000)
    return lambda m: a + b * m + c / m


@pytest.mark.parametrize("kind", [lambda_like, convex])
def test_the_search_ends_within_two_percent_of_the_cheapest_size(
    kind: Callable[..., Curve],
) -> None:
    rng = random.Random(f"measured-search:{kind.__name__}")
    worst_steps = 0
    for _ in range(200):
        curve = kind(rng)
        floor = rng.uniform(128, 2000)
        cap = 10_240.0
        start = floor * rng.uniform(1.0, 4.0)
        best, steps = search(curve, start, floor, cap)
        grid = [floor * (cap / floor) ** (k / 1000) for k in range(1001)]
        lowest = min(curve(m) for m in grid)
        assert curve(best) <= 1.02 * lowest
        worst_steps = max(worst_steps, steps)
    assert worst_steps <= 14


def test_a_size_at_its_bounds_is_not_stepped_past() -> None:
    # The cheapest is at the floor and the next size above was dearer: nothing left to try.
    assert next_trial(Measured(484.0, 1.0, None, 540.0), floor_mb=480.0, cap_mb=10_240) is None
    # ... but 4% above the floor, the floor itself is tried.
    assert next_trial(Measured(500.0, 1.0, None, 540.0), floor_mb=480.0, cap_mb=10_240) == 480.0
    # Nothing measured above: step out by STEP first, the last step to the cap itself.
    assert next_trial(Measured(500.0, 1.0, None, None), 480.0, 10_240) == pytest.approx(500 * STEP)
    assert next_trial(Measured(9500.0, 1.0, 9000.0, None), 480.0, 10_240) == 10_240
    assert next_trial(Measured(10_200.0, 1.0, 9500.0, None), 480.0, 10_240) is None
    # Measured above, not below: step down, not below the floor.
    assert next_trial(Measured(600.0, 1.0, None, 900.0), 500.0, 10_240) == 500.0
    # Between two measured sizes: the wider gap is halved on a log scale.
    size = next_trial(Measured(1000.0, 0.8, 900.0, 2000.0), 500.0, 10_240)
    assert size == pytest.approx(math.sqrt(1000 * 2000))
    assert next_trial(Measured(1000.0, 0.8, 1000 / CLOSE, 1000 * CLOSE), 500.0, 10_240) is None


def test_the_measurements_are_read_from_the_facts_and_bound_right_sizing() -> None:
    facts = {
        "extra": {
            "cheapest_measured_memory_mb": 1900.0,
            "cheapest_measured_cost_ratio": 0.7,
            "measured_below_mb": 1200.0,
        }
    }
    m = measured(facts)
    assert m == Measured(1900.0, 0.7, 1200.0, None)
    assert measured_floor(facts) == 1900.0  # a smaller size cost more: nothing below pays
    del facts["extra"]["measured_below_mb"]
    assert measured_floor(facts) is None  # nothing measured below: the need decides
    assert measured({"extra": {}}) is None and measured({}) is None
