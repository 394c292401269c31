"""Heuristic topology from invocation timing alone: who calls whom, with a confidence.

The idea of Peddycord et al. (NSDMiner): when service A calls service B synchronously,
B's invocations run *inside* A's, far more often than chance would give.  Each invocation
of B is attributed to the innermost interval of another node that contains it (so that
A -> B -> C does not also give A -> C); an edge A -> B is kept when the number of B's
invocations attributed to A is improbable under chance: a binomial tail over B's
invocations, with the chance of a random B interval fitting inside one of A's as the
success probability.  That chance is estimated from the data (the null model): random
intervals with B's durations, placed at random times, attributed the same way.  The
confidence of an edge is one minus the tail.

Pure: it needs intervals only, so it works for any provider that reports when
invocations started and ended (the local host's records, AWS REPORT lines, request
timing from Prometheus).
"""

from __future__ import annotations

import bisect
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


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
    """Invocations of the target attributed to the source."""
    expected: float
    """How many would be attributed by chance."""
    confidence: float
    durations_ms: tuple[float, ...]
    errors: int


class _Index:
    """Intervals sorted by start, to find the innermost one containing a given span."""

    def __init__(self, intervals: Sequence[Interval], slack: float) -> None:
        self.items = sorted(intervals, key=lambda i: (i.start, -i.end))
        self.starts = [i.start for i in self.items]
        self.longest = max((i.duration for i in self.items), default=0.0)
        self.slack = slack

    def innermost(self, node: str, start: float, end: float) -> Interval | None:
        """The latest-starting interval of another node that contains ``[start, end]``."""
        high = bisect.bisect_right(self.starts, start + self.slack)
        low = bisect.bisect_left(self.starts, start - self.longest - self.slack)
        for index in range(high - 1, low - 1, -1):
            candidate = self.items[index]
            if candidate.node != node and candidate.end + self.slack >= end:
                return candidate
        return None


def attribute(
    intervals: Sequence[Interval], slack: float = 0.0
) -> dict[tuple[str, str], list[Interval]]:
    """Each interval attributed to the innermost interval of another node that contains it.

    ``slack`` (seconds) tolerates clocks that disagree a little at the edges.
    """
    index = _Index(intervals, slack)
    credited: dict[tuple[str, str], list[Interval]] = defaultdict(list)
    for current in intervals:
        parent = index.innermost(current.node, current.start, current.end)
        if parent is not None:
            credited[(parent.node, current.node)].append(current)
    return credited


def chance(
    index: _Index,
    node: str,
    durations: Sequence[float],
    begin: float,
    span: float,
    rng: random.Random,
    probes: int,
) -> dict[str, float]:
    """For each other node, the chance that a random interval of ``node`` is attributed to it.

    Estimated by placing ``probes`` intervals (with ``node``'s own durations) at random
    times and attributing them like real ones: the null model of "no call at all".
    """
    hits: dict[str, int] = defaultdict(int)
    for _ in range(probes):
        duration = rng.choice(durations)
        start = begin + rng.random() * max(0.0, span - duration)
        parent = index.innermost(node, start, start + duration)
        if parent is not None:
            hits[parent.node] += 1
    return {parent: (count + 0.5) / (probes + 1) for parent, count in hits.items()}


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


def mine(
    intervals: Iterable[Interval],
    *,
    min_calls: int = 3,
    min_confidence: float = 0.999,
    min_share: float = 0.05,
    slack: float = 0.0,
    probes: int = 400,
    seed: int = 0,
) -> list[MinedEdge]:
    """The edges the timing supports, most confident first.

    An edge needs at least ``min_calls`` attributed invocations, at least ``min_share``
    of the target's invocations, and ``min_confidence`` against chance.
    """
    items = list(intervals)
    if not items:
        return []
    by_node: dict[str, list[Interval]] = defaultdict(list)
    for interval in items:
        by_node[interval.node].append(interval)
    begin = min(i.start for i in items)
    span = max(i.end for i in items) - begin
    index = _Index(items, slack)
    rng = random.Random(seed)
    nulls: dict[str, dict[str, float]] = {}
    edges = []
    for (source, target), children in sorted(attribute(items, slack).items()):
        n = len(by_node[target])
        k = len(children)
        if k < min_calls or k < min_share * n:
            continue
        if target not in nulls:
            durations = [i.duration for i in by_node[target]]
            nulls[target] = chance(index, target, durations, begin, span, rng, probes)
        p = nulls[target].get(source, 0.5 / (probes + 1))
        tail = binomial_tail(k, n, p)
        confidence = 1.0 - tail
        if confidence < min_confidence:
            continue
        edges.append(
            MinedEdge(
                source=source,
                target=target,
                calls=k,
                expected=n * p,
                confidence=confidence,
                durations_ms=tuple(i.duration * 1000 for i in children),
                errors=sum(1 for i in children if i.failed),
            )
        )
    return sorted(edges, key=lambda e: (-e.confidence, -e.calls, e.source, e.target))


def naive(intervals: Iterable[Interval]) -> set[tuple[str, str]]:
    """The naive rule, for comparison: A -> B when some B overlaps some A at least once."""
    by_node: dict[str, list[Interval]] = defaultdict(list)
    for interval in intervals:
        by_node[interval.node].append(interval)
    starts = {n: [i.start for i in sorted(v, key=lambda i: i.start)] for n, v in by_node.items()}
    ordered = {n: sorted(v, key=lambda i: i.start) for n, v in by_node.items()}
    found = set()
    for a, a_intervals in ordered.items():
        longest = max(i.duration for i in a_intervals)
        for b, b_intervals in by_node.items():
            if a == b:
                continue
            if _overlaps_any(a_intervals, starts[a], longest, b_intervals):
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


def by_node(intervals: Iterable[Interval]) -> Mapping[str, int]:
    """How many intervals each node has."""
    counts: dict[str, int] = defaultdict(int)
    for interval in intervals:
        counts[interval.node] += 1
    return dict(counts)
