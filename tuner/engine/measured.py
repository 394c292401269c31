"""Sizing by cost measured on real traffic: the cheapest size found, and the next size to try.

Pure.  Where more memory buys CPU, a function may cost less at a larger size: its
invocations end sooner than the memory grows (a runtime whose own threads compete with
the handler for a small CPU share).  No model tells that from one size, so it is
measured: a provider that can run a share of the real traffic at another size (a trial)
reports what an invocation cost at each size the function ran at, cleanly (no OOM, no
timeout), since its version went live:

- ``extra.cheapest_measured_memory_mb``: the size that cost least per invocation;
- ``extra.cheapest_measured_cost_ratio``: its cost per invocation over today's size's;
- ``extra.measured_below_mb``, ``extra.measured_above_mb``: the nearest sizes measured
  below and above it.

The search brackets the cheapest size on a log scale: it steps out by :data:`STEP` from
the cheapest size while nothing was measured beyond it on a side (up first; the last step
to a bound is the bound itself), then halves the wider gap, until both neighbours are
within :data:`CLOSE` of it or it is at a bound (the need plus a margin and the slowest
allowed below, the provider's largest size above).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tuner.domain.model import fact_number

STEP = 1.5
"""How far a trial steps out beyond the sizes measured."""
CLOSE = 1.12
"""A neighbour this close to the cheapest size brackets it closely enough."""
EXACT = 1.01
"""A size this close to a bound is at it: the bound itself need not be tried."""


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
