"""Heuristic topology from invocation timing alone: who calls whom, with a confidence.

The idea of Peddycord et al. (NSDMiner): when function A calls B synchronously, B's
invocations run *inside* A's far more often than chance would give.  Here:

- only the nodes in ``callers`` may call (functions: a dependency never calls anyone);
- each invocation of B is given to the innermost longer invocation that contains it, so
  that A -> B -> C gives no A -> C and a callee is never its caller's caller; when its
  containers cross, it is given to no one; of two given to the same one that run at
  once (a synchronous caller makes one call at a time), the one its node is less often
  given to that caller goes to no one (:mod:`.containment`);
- chance is what the same count gives with A's invocations all shifted in time together
  (by one to ten of their lengths): traffic that rises and falls together (a daily
  cycle, shared bursts) and a job that runs most of the time keep their chance, and only
  a finer link to A's invocations is evidence;
- functions that merely start together (a shared clock, a cron schedule) nest about as
  often as they cross: B still running when A starts, which no call does.  So the crossings
  beyond chance are added to what chance explains.  This is the refutation of The Mystery
  Machine (Chow et al., OSDI'14) in counts: an observation a call cannot produce counts
  against it;
- B's invocations that start together (a split's parts, a fan-out) are one burst, and
  bursts are what is counted: they land inside or across A's invocations together, so
  counted one by one they would make one coincidence look like several;
- an edge's p-value is the binomial tail of the contained count against that expectation
  (raised by twice the standard error of chance's estimate), and its confidence is that
  p-value calibrated against generated applications whose calls are known
  (:mod:`.calibration`): of the edges claimed at 0.9, about 90% are true.  Timing alone
  never claims certainty.

Pure: it needs intervals only, so it works for any provider that reports when
invocations started and ended (the local host's records, AWS REPORT lines).
"""

from __future__ import annotations

import bisect
import math
import random
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from tuner.domain.stats import percentile
from tuner.mining.calibration import confidence_of
from tuner.mining.containment import (
    Containers,
    Starts,
    bursts,
    by_chance,
    overlapping_siblings,
)


@dataclass(frozen=True, slots=True)
class Interval:
    """One invocation (or outbound call) of one node, in seconds."""

    node: str
    start: float
    end: float
    failed: bool = False

    @property
    def duration(self) -> float:
        """Its length in seconds."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class MinedEdge:
    """An edge the timing supports: ``source`` calls ``target``."""

    source: str
    target: str
    calls: int
    """Invocations of the target given to the source."""
    bursts: int
    """The bursts they came in (invocations of the target that started together)."""
    expected: float
    """How many of those bursts chance and co-firing would give."""
    p_value: float
    confidence: float
    """The calibrated chance that the edge is real (below 1: timing is never certain)."""
    durations_ms: tuple[float, ...]
    errors: int


TOGETHER = 0.1
"""Invocations of one node that start within this share of its median length of each other
come as one burst (a split's parts, a fan-out): one observation, not several."""
SHIFT = 10.0
"""The null's largest shift, in multiples of the candidate caller's p90 duration (the
smallest is one: a shift must take a caller's invocation off the callees it held)."""


def attribute(
    intervals: Sequence[Interval], callers: Collection[str] | None = None, slack: float = 0.0
) -> dict[tuple[str, str], list[Interval]]:
    """Each interval given to the node of its innermost container among ``callers``.

    ``callers`` defaults to every node; ``slack`` (seconds) tolerates clocks that disagree
    a little at the edges.  Intervals whose containers cross are given to no one.
    """
    allowed = _callers(intervals, callers)
    return _attribute(intervals, Containers([i for i in intervals if i.node in allowed], slack))


def _attribute(
    intervals: Iterable[Interval], containers: Containers
) -> dict[tuple[str, str], list[Interval]]:
    """Each interval given to its holder's node; of two that run at once inside the same
    holder, the one of the node its holder's node holds less often overall is given to no
    one (both, when they are held as often)."""
    held: dict[tuple[str, float], list[Interval]] = defaultdict(list)
    for current in intervals:
        holder = containers.holder(current.node, current.start, current.end)
        if isinstance(holder, tuple):
            held[holder].append(current)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for (parent, _), children in held.items():
        for child in children:
            counts[(parent, child.node)] += 1
    credited: dict[tuple[str, str], list[Interval]] = defaultdict(list)
    for (parent, _), children in held.items():
        dropped: set[int] = set()
        for i, j in overlapping_siblings(children):
            ours, theirs = counts[(parent, children[i].node)], counts[(parent, children[j].node)]
            if ours <= theirs:
                dropped.add(i)
            if theirs <= ours:
                dropped.add(j)
        for index, child in enumerate(children):
            if index not in dropped:
                credited[(parent, child.node)].append(child)
    return credited


def _callers(intervals: Iterable[Interval], callers: Collection[str] | None) -> set[str]:
    return {i.node for i in intervals} if callers is None else set(callers)


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0 or k > n:
        return 1.0 if p >= 1.0 else 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k, n + 1):
        term = math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
        value = math.exp(term + i * log_p + (n - i) * log_q)
        total += value
        if value < 1e-18 * max(total, 1e-300) and i > n * p:
            break
    return min(1.0, total)


def _p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def mine(
    intervals: Iterable[Interval],
    *,
    callers: Collection[str] | None = None,
    min_calls: int = 3,
    min_confidence: float = 0.9,
    slack: float = 0.0,
    copies: int = 20,
    budget: int = 2000,
    seed: int = 0,
) -> list[MinedEdge]:
    """The edges the timing supports, most confident first.

    Only nodes in ``callers`` (default: all) are sources.  An edge needs at least
    ``min_calls`` attributed invocations and ``min_confidence``; ``copies`` shifts make
    the chance of each candidate edge, from at most ``budget`` looks.
    """
    items = list(intervals)
    if not items:
        return []
    allowed = _callers(items, callers)
    grouped: dict[str, list[Interval]] = defaultdict(list)
    for interval in items:
        grouped[interval.node].append(interval)
    containers = Containers([i for i in items if i.node in allowed], slack)
    begin = min(i.start for i in items)
    window = (begin, max(i.end for i in items) - begin + 1e-6)
    rng = random.Random(seed)
    in_bursts = {
        node: bursts(group, TOGETHER * (percentile([i.duration for i in group], 50) or 0.0))
        for node, group in grouped.items()
    }
    edges = []
    for (source, target), children in sorted(_attribute(items, containers).items()):
        if len(children) < min_calls:
            continue
        groups = in_bursts[target]
        held = set(map(id, children))
        holds = [any(id(i) in held for i in group) for group in groups]
        strata = (
            [g for g, h in zip(groups, holds, strict=True) if h],
            [g for g, h in zip(groups, holds, strict=True) if not h],
        )
        k, n = len(strata[0]), len(groups)
        longest = _p90([i.duration for i in grouped[source]])
        starts = Starts(grouped[source])
        spread = (longest, SHIFT * longest)
        chance = by_chance(
            strata, source, containers, starts, spread, window, rng, copies=copies, budget=budget
        )
        crossing = sum(1 for g in groups if any(starts.crossed(i.start, i.end) for i in g))
        cofired = crossing - (chance.crossing - 2.0 * chance.crossing_error)
        expected = chance.contained + 2.0 * chance.contained_error + max(0.0, cofired)
        floor = 0.5 / copies  # below one hit in all the shifts of one burst
        p_value = binomial_tail(k, n, min(1.0, max(expected, floor) / n))
        confidence = confidence_of(p_value)
        if confidence < min_confidence:
            continue
        edges.append(
            MinedEdge(
                source=source,
                target=target,
                calls=len(children),
                bursts=k,
                expected=expected,
                p_value=p_value,
                confidence=confidence,
                durations_ms=tuple(i.duration * 1000 for i in children),
                errors=sum(1 for i in children if i.failed),
            )
        )
    return sorted(edges, key=lambda e: (-e.confidence, e.p_value, -e.calls, e.source, e.target))


def naive(intervals: Iterable[Interval]) -> set[tuple[str, str]]:
    """The naive rule, for comparison: A -> B when some B overlaps some A at least once."""
    by_name: dict[str, list[Interval]] = defaultdict(list)
    for interval in intervals:
        by_name[interval.node].append(interval)
    ordered = {n: sorted(v, key=lambda i: i.start) for n, v in by_name.items()}
    starts = {n: [i.start for i in v] for n, v in ordered.items()}
    found = set()
    for a, a_intervals in ordered.items():
        longest = max(i.duration for i in a_intervals)
        for b, b_intervals in by_name.items():
            if a != b and _overlaps_any(a_intervals, starts[a], longest, b_intervals):
                found.add((a, b))
    return found


def _overlaps_any(
    parents: Sequence[Interval],
    parent_starts: Sequence[float],
    longest: float,
    children: Sequence[Interval],
) -> bool:
    for child in children:
        low = bisect.bisect_left(parent_starts, child.start - longest)
        high = bisect.bisect_right(parent_starts, child.end)
        for parent in parents[low:high]:
            if parent.start < child.end and child.start < parent.end:
                return True
    return False


def precision_recall(
    found: Iterable[tuple[str, str]], truth: Iterable[tuple[str, str]]
) -> tuple[float, float]:
    """Precision and recall of found edges against the true ones (1.0 for empty sets)."""
    found_set, true_set = set(found), set(truth)
    hits = len(found_set & true_set)
    precision = hits / len(found_set) if found_set else 1.0
    recall = hits / len(true_set) if true_set else 1.0
    return precision, recall


def edge_names(edges: Iterable[MinedEdge]) -> set[tuple[str, str]]:
    """The (source, target) pairs of mined edges."""
    return {(e.source, e.target) for e in edges}
