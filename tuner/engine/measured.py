"""Sizing by cost measured on real traffic: the cheapest size found, and the next size to try.

Pure.  Where more memory buys CPU, a function may cost less at a larger size: its
invocations end sooner than the memory grows (a runtime whose own threads compete with
the handler for a small CPU share).  No model tells that from one size, so it is
measured: a provider that can run a share of the real traffic at another size (a trial)
reports what a successful invocation cost at each size the function's version ran at
without running out of memory (failures paid for):

- ``extra.cheapest_measured_memory_mb``: the size where that cost least;
- ``extra.cheapest_measured_cost_ratio``: its cost over today's size's;
- ``extra.measured_below_mb``, ``extra.measured_above_mb``: the nearest sizes measured
  below and above it.

The search brackets the cheapest size on a log scale: it steps out by :data:`STEP` from
the cheapest size while nothing was measured beyond it on a side (up first; the last step
to a bound is the bound itself), then halves the wider gap, until both neighbours are
within :data:`CLOSE` of it or it is at a bound.  Its bounds are fixed, so that a rule's
condition can tell whether the search calls for anything (:func:`search`): below, the
need plus :data:`MARGIN` (of its growing part) and the size at which the function would
run :data:`MAX_SLOWDOWN` times slower than its fastest; above, the provider's largest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tuner.domain.model import Limits, fact_number
from tuner.engine.sizing import (
    cost_ratio_at,
    duration_split,
    smallest_in_time,
    steady_need,
    with_margin,
)

STEP = 1.5
"""How far a trial steps out beyond the sizes measured."""
CLOSE = 1.12
"""A neighbour this close to the cheapest size brackets it closely enough."""
EXACT = 1.01
"""A size this close to a bound is at it: the bound itself need not be tried."""
MARGIN = 0.1
"""Headroom over the need (over its growing part) below which no size is tried or taken."""
MAX_SLOWDOWN = 1.3
"""No size is tried or taken where the mean duration would exceed this factor of the fastest."""


@dataclass(frozen=True, slots=True)
class Measured:
    """What real traffic said about a function's cost per invocation at the sizes it ran at."""

    cheapest_mb: float
    cost_ratio: float | None
    """The cheapest size's cost per invocation over today's size's (None: today's not measured)."""
    below_mb: float | None
    above_mb: float | None


def measured(facts: Mapping[str, Any]) -> Measured | None:
    """The measurements the provider reports, or None when it reports none."""
    extra = facts.get("extra")
    if not isinstance(extra, Mapping):
        return None
    cheapest = fact_number(extra, "cheapest_measured_memory_mb")
    if not cheapest:
        return None
    return Measured(
        cheapest,
        fact_number(extra, "cheapest_measured_cost_ratio"),
        fact_number(extra, "measured_below_mb") or None,
        fact_number(extra, "measured_above_mb") or None,
    )


def next_trial(m: Measured, floor_mb: float, cap_mb: float) -> float | None:
    """The next size to try on real traffic, or None when the cheapest size is bracketed.

    ``floor_mb`` is the least memory the function may run at (its need and a margin) and
    ``cap_mb`` the most the provider allows.
    """
    c = m.cheapest_mb
    if m.above_mb is None and c < cap_mb / EXACT:
        return min(cap_mb, c * STEP) if c * CLOSE < cap_mb else cap_mb
    if m.below_mb is None and c > floor_mb * EXACT:
        return max(floor_mb, c / STEP) if c > floor_mb * CLOSE else floor_mb
    gaps: list[tuple[float, float]] = []
    if m.above_mb is not None and m.above_mb > c * CLOSE:
        gaps.append((m.above_mb / c, math.sqrt(c * m.above_mb)))
    if m.below_mb is not None and c > m.below_mb * CLOSE:
        gaps.append((c / m.below_mb, math.sqrt(c * m.below_mb)))
    if not gaps:
        return None
    return max(gaps)[1]


@dataclass(frozen=True, slots=True)
class Search:
    """Where the search for the cheapest size stands."""

    found: Measured
    floor_mb: float
    """The least memory it may go to: the need plus the margin, and fast enough."""
    target_mb: float
    """The cheapest size it may go to: the cheapest measured, or the floor when that is below."""
    excess_cost: float | None
    """How much more today's size costs than the target (None: not known)."""
    next_mb: float | None
    """The next size to try; None when the cheapest is bracketed."""


def search(facts: Mapping[str, Any], cpu_scales: bool, cap_mb: float) -> Search | None:
    """Where the search stands for a function, or None before any cost was measured.

    Where the cheapest size measured is below the floor, the floor is the cheapest size
    allowed (above the cheapest, the cost only rises with memory) and no trial is needed:
    today's excess over it is predicted from the CPU time, and never put above what was
    measured at the cheapest size.
    """
    found = measured(facts)
    need = steady_need(facts) if found is not None else None
    if found is None or need is None:
        return None
    timing = smallest_in_time(facts, MAX_SLOWDOWN, cpu_scales)
    floor = max(with_margin(need, MARGIN), timing[0] if timing else 0.0)
    measured_excess = 1.0 / found.cost_ratio - 1.0 if found.cost_ratio else None
    if found.cheapest_mb >= floor:
        return Search(
            found, floor, found.cheapest_mb, measured_excess, next_trial(found, floor, cap_mb)
        )
    memory = fact_number(facts, "memory_mb") or 0.0
    if memory <= floor * EXACT:
        return Search(found, floor, floor, 0.0, None)
    ratio = cost_ratio_at(facts, memory, floor)
    if not ratio or measured_excess is None:
        return Search(found, floor, floor, None, None)
    return Search(found, floor, floor, min(measured_excess, 1.0 / ratio - 1.0), None)


def measured_floor(facts: Mapping[str, Any]) -> float | None:
    """The least memory real traffic supports: the cheapest size, when a smaller one cost more.

    Below the cheapest size measured, where a smaller size was measured too and cost more,
    every size costs more (the cost falls, then rises, with memory): None when no smaller
    size was measured.
    """
    m = measured(facts)
    if m is None or m.below_mb is None:
        return None
    return m.cheapest_mb


def cost_facts(facts: Mapping[str, Any], limits: Limits) -> dict[str, float | None]:
    """The facts of where time and cost go: ``cpu_time_share`` and the search's state.

    ``cpu_time_share`` is the share of the mean duration on CPU where memory buys CPU;
    ``measured_excess_cost`` how much more today's size costs than the cheapest size it
    may go to (:attr:`Search.target_mb`); ``measured_trial_mb`` the next size to try.
    """
    split = duration_split(facts) if limits.cpu_scales_with_memory else None
    found = search(facts, limits.cpu_scales_with_memory, limits.memory_max_mb)
    return {
        "cpu_time_share": split[0] / (split[0] + split[1]) if split and sum(split) else None,
        "measured_excess_cost": found.excess_cost if found else None,
        "measured_trial_mb": found.next_mb if found else None,
    }
