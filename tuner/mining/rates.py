"""Heuristic topology from request-rate series: who calls whom when only aggregates exist.

Prometheus keeps request counts and duration sums per scrape, not one interval per
request, so the containment test of :mod:`.timing` cannot run on them.  What
remains is the same idea one level up: when service A calls service B, every change in
A's request rate shows up in B's rate in the same step (or a step later), far more often
than chance would give.  So, per target B:

- each series is differenced (so that a trend both share, such as the daily cycle, does
  not look like a call) and standardised;
- only services slower on average than B may call it (a synchronous caller's duration
  includes its callee's: the containment idea of NSDMiner, read from the means);
- callers are chosen greedily: the candidate (and lag, 0..``max_lag`` steps) whose series
  best explains what is left of B's, then B's series is regressed on the chosen ones and
  the next candidate must explain the rest (a partial correlation), so that A -> B -> C
  gives no A -> C;
- each choice is tested against a shift null: B's residual series is rotated by every
  offset beyond the lags, and the best correlation any candidate reaches with a rotated
  series is the null statistic (rotation keeps each series' own autocorrelation; taking
  the best over candidates and lags pays for having searched them).  A candidate is
  taken while fewer than 1% of the rotations do as well;
- its confidence is how far its correlation stands above the rotations' best (as a
  normal tail), calibrated against generated applications whose calls are known
  (:mod:`.calibration`), like the timing miner's: services that share a caller, or a
  callee slower on average than its caller, fool the means and the correlations often
  enough that a rotation test alone overstates it.

Its calls are estimated: the regression slope (B's requests per A's request) times A's
requests.  Pure: it needs aligned series only.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from tuner.mining.calibration import RATE_EVIDENCE_LIMIT, RATE_KNOTS, confidence_of


@dataclass(frozen=True, slots=True)
class RateSeries:
    """One service's request rate at each step (requests per step), with its mean duration."""

    node: str
    counts: tuple[float, ...]
    """Requests in each step, all series aligned on the same steps."""
    mean_duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class RateEdge:
    """An edge the rate series support: ``source`` calls ``target``."""

    source: str
    target: str
    calls: int
    """Estimated: the target's requests per source request times the source's requests."""
    correlation: float
    """Partial correlation of the differenced series, given the callers chosen before it."""
    lag: int
    """Steps by which the target follows the source."""
    confidence: float
    """The calibrated chance that the edge is real (:mod:`.calibration`)."""
    p_value: float
    """How rare its correlation is among the rotations' best (a normal tail)."""


def _diff(values: Sequence[float]) -> list[float]:
    return [b - a for a, b in zip(values, values[1:], strict=False)]


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return float(sum(map(operator.mul, a, b)))


def _centre(values: Sequence[float]) -> list[float]:
    mean = math.fsum(values) / len(values) if values else 0.0
    return [v - mean for v in values]


def _unit(values: Sequence[float]) -> list[float] | None:
    norm = math.sqrt(_dot(values, values))
    return [v / norm for v in values] if norm > 1e-12 else None


def _rotate(values: list[float], by: int) -> list[float]:
    by %= len(values)
    return values[by:] + values[:by]


def _minus_projection(values: list[float], basis: Sequence[list[float]]) -> list[float]:
    out = list(values)
    for q in basis:
        weight = _dot(out, q)
        out = [v - weight * u for v, u in zip(out, q, strict=True)]
    return out


@dataclass(frozen=True, slots=True)
class _Null:
    share: float
    above: float


class _Target:
    """The greedy selection of one target's callers."""

    def __init__(
        self,
        target: str,
        residual: list[float],
        candidates: Mapping[tuple[str, int], list[float]],
    ) -> None:
        self.target = target
        self.residual = residual
        self.candidates = dict(candidates)
        self.basis: list[list[float]] = []

    def best(self) -> tuple[tuple[str, int], float, list[float]] | None:
        """The candidate (node, lag) most correlated with the residual, given the chosen."""
        unit_residual = _unit(self.residual)
        if unit_residual is None:
            return None
        found: tuple[tuple[str, int], float, list[float]] | None = None
        for key, vector in self.candidates.items():
            direction = _unit(_minus_projection(vector, self.basis))
            if direction is None:
                continue
            correlation = _dot(unit_residual, direction)
            if found is None or correlation > found[1]:
                found = (key, correlation, direction)
        return found

    def null(self, observed: float, max_lag: int, directions: list[list[float]]) -> _Null:
        """How rotations of the residual fare: the share some candidate correlates with as
        well as ``observed``, and how far ``observed`` stands above their best correlations
        (in standard deviations)."""
        unit_residual = _unit(self.residual)
        assert unit_residual is not None
        n = len(unit_residual)
        margin = max_lag + 1
        offsets = range(margin, n - margin + 1)
        if not offsets:
            return _Null(1.0, 0.0)
        best = []
        for offset in offsets:
            rotated = _rotate(unit_residual, offset)
            best.append(max((_dot(rotated, d) for d in directions), default=0.0))
        beaten = sum(1 for value in best if value >= observed)
        mean = math.fsum(best) / len(best)
        spread = math.sqrt(math.fsum((v - mean) ** 2 for v in best) / len(best))
        above = (observed - mean) / spread if spread > 1e-12 else 0.0
        return _Null((beaten + 1) / (len(offsets) + 1), above)

    def choose(self, key: tuple[str, int], direction: list[float]) -> float:
        """Take the candidate as a caller; its slope (residual units per candidate unit)."""
        vector = self.candidates.pop(key)
        perpendicular = _minus_projection(vector, self.basis)
        slope = _dot(self.residual, perpendicular) / _dot(perpendicular, perpendicular)
        self.residual = _minus_projection(self.residual, [direction])
        self.basis.append(direction)
        for other in [k for k in self.candidates if k[0] == key[0]]:
            del self.candidates[other]  # one lag per caller
        return slope


def mine_rates(
    series: Sequence[RateSeries],
    *,
    max_lag: int = 1,
    significance: float = 0.99,
    min_confidence: float = 0.9,
    min_correlation: float = 0.2,
    min_calls: int = 3,
    max_callers: int = 5,
    callers: Collection[str] | None = None,
) -> list[RateEdge]:
    """The edges the rate series support, most confident first.

    Only services in ``callers`` (default: all) are sources.  A caller is taken while
    fewer than ``1 - significance`` of the rotations do as well; it is an edge when its
    calibrated confidence is at least ``min_confidence``.

    Series must be aligned and of equal length; with fewer than ``2 * (max_lag + 1) + 10``
    steps nothing can be told from chance and no edge is returned.  The share of rotations
    cannot fall below ``1 / (steps - 2 * max_lag)``: 0.99 takes at least ~100 steps.
    """
    if not series:
        return []
    length = len(series[0].counts)
    if any(len(s.counts) != length for s in series):
        raise ValueError("rate series must be aligned: every series needs the same steps")
    if length - 1 < 2 * (max_lag + 1) + 10:
        return []
    differenced = {s.node: _centre(_diff(s.counts)) for s in series}
    totals = {s.node: math.fsum(s.counts) for s in series}
    edges: list[RateEdge] = []
    for target in series:
        residual = list(differenced[target.node])
        if _unit(residual) is None:
            continue
        candidates = {
            (caller.node, lag): _centre(_rotate(differenced[caller.node], -lag))
            for caller in series
            if (callers is None or caller.node in callers) and _may_call(caller, target)
            for lag in range(max_lag + 1)
        }
        selection = _Target(target.node, residual, candidates)
        for _ in range(max_callers):
            found = selection.best()
            if found is None or found[1] < min_correlation:
                break
            key, correlation, direction = found
            directions = [
                d
                for d in (_unit(_minus_projection(v, selection.basis)) for v in candidates.values())
                if d is not None
            ]
            null = selection.null(correlation, max_lag, directions)
            if 1.0 - null.share < significance:
                break
            slope = selection.choose(key, direction)
            calls = min(totals[target.node], max(0.0, slope) * totals[key[0]])
            p_value = 0.5 * math.erfc(null.above / math.sqrt(2.0))
            confidence = confidence_of(p_value, RATE_KNOTS, limit=RATE_EVIDENCE_LIMIT)
            if round(calls) >= min_calls and confidence >= min_confidence:
                edges.append(
                    RateEdge(
                        key[0], target.node, round(calls), correlation, key[1], confidence, p_value
                    )
                )
            candidates = selection.candidates
    return sorted(edges, key=lambda e: (-e.confidence, -e.correlation, e.source, e.target))


def _may_call(caller: RateSeries, target: RateSeries) -> bool:
    """A caller must be slower than its callee (its duration holds the callee's)."""
    if caller.node == target.node:
        return False
    if target.mean_duration_s is None:
        return True
    return caller.mean_duration_s is not None and caller.mean_duration_s > target.mean_duration_s
