"""A timing edge's confidence: its p-value mapped to the share of such edges that are real.

A p-value says how rare the evidence would be without a call, not how likely the call
is.  The map is an isotonic regression (pool adjacent violators) of "the edge is real"
on ``-log10(p)``, fitted (:func:`fit`) on the candidate edges of randomly generated
applications whose calls are known (``python bench/bench_topology.py --fit``, on seeds
the benchmark does not score), read between its knots by linear interpolation, and
capped below 1: timing alone is never certain.  :func:`reliability` is the check:
claimed confidence against the true share, per bin, on other applications.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

KNOTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.167),
    (0.03, 0.282),
    (0.15, 0.373),
    (0.52, 0.561),
    (1.74, 0.752),
    (4.31, 0.902),
    (6.43, 0.927),
    (9.14, 0.952),
    (12.07, 0.97),
    (16.48, 0.977),
    (24.83, 0.991),
    (30.0, 0.998),
)
"""(-log10 p, share of real edges), fitted by ``python bench/bench_topology.py --fit``."""
RATE_KNOTS: tuple[tuple[float, float], ...] = (
    (3.34, 0.396),
    (5.43, 0.515),
    (8.73, 0.681),
    (14.62, 0.794),
    (21.83, 0.846),
    (28.71, 0.888),
    (35.54, 0.896),
    (43.62, 0.903),
    (53.87, 0.904),
    (67.59, 0.922),
    (94.76, 0.928),
    (120.0, 0.976),
)
"""The same for the rate-series miner (:mod:`.rates`), fitted on the same applications."""
RATE_EVIDENCE_LIMIT = 120.0
"""Its correlations' tails still tell edges apart far beyond 10^-30."""
CAP = 0.99
"""The most timing alone claims."""
EVIDENCE_LIMIT = 30.0
"""``-log10(p)`` beyond this says nothing more (the null itself is a model)."""


def evidence(p_value: float, limit: float = EVIDENCE_LIMIT) -> float:
    """``-log10(p)``, at most ``limit``."""
    return max(0.0, min(limit, -math.log10(max(p_value, 1e-300))))


def confidence_of(
    p_value: float,
    knots: Sequence[tuple[float, float]] = KNOTS,
    cap: float = CAP,
    limit: float = EVIDENCE_LIMIT,
) -> float:
    """The calibrated confidence of an edge with this p-value."""
    x = evidence(p_value, limit)
    xs = [k[0] for k in knots]
    index = bisect.bisect_right(xs, x)
    if index == 0:
        value = knots[0][1]
    elif index == len(knots):
        value = knots[-1][1]
    else:
        (x0, y0), (x1, y1) = knots[index - 1], knots[index]
        value = y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return min(cap, value)


def fit(
    samples: Iterable[tuple[float, bool]], blocks: int = 16, limit: float = EVIDENCE_LIMIT
) -> tuple[tuple[float, float], ...]:
    """Knots of the isotonic regression of truth on the evidence of ``(p_value, true)`` pairs.

    Pool adjacent violators (over samples of equal evidence taken together) gives blocks
    of equal share; the smallest neighbouring blocks are merged until at most ``blocks``
    are left, and each block becomes a knot at its mean evidence.
    """
    tied: dict[float, list[float]] = {}  # evidence -> [sum of x, sum of y, count]
    for p, true in samples:
        x = evidence(p, limit)
        group = tied.setdefault(x, [0.0, 0.0, 0.0])
        group[0] += x
        group[1] += 1.0 if true else 0.0
        group[2] += 1.0
    pooled: list[list[float]] = []
    for _, group in sorted(tied.items()):
        pooled.append(list(group))
        while len(pooled) > 1 and pooled[-2][1] / pooled[-2][2] >= pooled[-1][1] / pooled[-1][2]:
            last = pooled.pop()
            pooled[-1] = [a + b for a, b in zip(pooled[-1], last, strict=True)]
    while len(pooled) > blocks:
        index = min(range(len(pooled) - 1), key=lambda i: pooled[i][2] + pooled[i + 1][2])
        merged = [a + b for a, b in zip(pooled[index], pooled[index + 1], strict=True)]
        pooled[index : index + 2] = [merged]
    knots: list[list[float]] = []
    for block in pooled:  # blocks that would share a knot's (rounded) place become one
        if knots and round(knots[-1][0] / knots[-1][2], 2) == round(block[0] / block[2], 2):
            knots[-1] = [a + b for a, b in zip(knots[-1], block, strict=True)]
        else:
            knots.append(block)
    return tuple((round(x / n, 2), round(y / n, 3)) for x, y, n in knots)


@dataclass(frozen=True, slots=True)
class Bin:
    """Claims whose confidence fell in ``[low, high)``: how many, claimed and true share."""

    low: float
    high: float
    claims: int
    claimed: float
    true_share: float

    @property
    def gap(self) -> float:
        """How far the true share is from the mean claim."""
        return abs(self.true_share - self.claimed)


def reliability(claims: Iterable[tuple[float, bool]], edges: Sequence[float]) -> list[Bin]:
    """Claimed confidence against the true share in each bin between consecutive ``edges``.

    The last bin includes its upper edge; bins without claims are left out.
    """
    grouped: list[list[tuple[float, bool]]] = [[] for _ in edges[1:]]
    for confidence, true in claims:
        index = min(len(edges) - 2, max(0, bisect.bisect_right(edges, confidence) - 1))
        grouped[index].append((confidence, true))
    return [
        Bin(
            edges[index],
            edges[index + 1],
            len(group),
            sum(c for c, _ in group) / len(group),
            sum(1 for _, t in group if t) / len(group),
        )
        for index, group in enumerate(grouped)
        if group
    ]
