"""Which invocation holds which: innermost containers, start crossings and their chance.

The evidence the timing miner (:mod:`.timing`) weighs, for a candidate caller A of B:

- **contained**: B's invocations whose innermost container is one of A's.  A container
  must start no later than B, end no earlier and last longer (a callee never outlasts its
  caller, so two invocations never contain each other).  When B's containers cross (one
  ends inside another), B's caller cannot be told and B counts for no one.
- **crossing**: B's invocations still running when one of A's starts.  A call never does
  that (the callee starts after its caller), but two functions that merely start together
  (a shared clock, a cron schedule) do it as often as they nest.  It is the observation
  that refutes co-firing as a call.
- **chance**: both counts again with all of A's invocations shifted in time together
  (by one to ten of its invocations' lengths, around the observed window: the shift
  predictor of spike-train analysis), B's staying where they are, inside their other
  callers.  A keeps its own rhythm (a schedule, a shared tick, how much of the time it
  runs) and its slow changes of rate (a daily cycle, bursts shared with B); only its
  finer link to B's invocations is broken.  Chance is estimated per stratum of B's
  invocations (those A holds, the others) from a sample, with its standard error.

All three count **bursts** of B, not invocations: invocations of B that start together
(a split's parts, a fan-out) fall inside or across the same invocation of A together,
so they are one observation, and counting them one by one would make a coincidence look
several times as strong as it is.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

AMBIGUOUS = "\0ambiguous"
"""The parent of an interval whose containers cross: no one's."""


class Span(Protocol):
    """What containment needs of an interval."""

    @property
    def node(self) -> str:
        """Who ran it."""

    @property
    def start(self) -> float:
        """When it started, in seconds."""

    @property
    def end(self) -> float:
        """When it ended."""


@dataclass(frozen=True, slots=True)
class _Node:
    name: str
    starts: list[float]
    ends: list[float]
    longest: float


class Containers:
    """The intervals of the nodes that may call, indexed to find an interval's parent."""

    def __init__(self, intervals: Sequence[Span], slack: float = 0.0) -> None:
        grouped: dict[str, list[Span]] = defaultdict(list)
        for interval in intervals:
            grouped[interval.node].append(interval)
        self._nodes = {name: _index(name, items) for name, items in grouped.items()}
        self.slack = slack

    def parent(
        self, node: str, start: float, end: float, moved: str = "", by: float = 0.0
    ) -> str | None:
        """The node of the innermost interval containing ``[start, end]``; None; or AMBIGUOUS.

        Intervals of ``node`` itself are never its parent; those of ``moved`` are taken as
        if they had all happened ``by`` seconds later.
        """
        found = self.holder(node, start, end, moved, by)
        return found if found is None or found == AMBIGUOUS else found[0]

    def holder(
        self, node: str, start: float, end: float, moved: str = "", by: float = 0.0
    ) -> tuple[str, float] | str | None:
        """The innermost interval containing ``[start, end]`` (its node and start); None;
        or AMBIGUOUS when the intervals containing it cross."""
        slack, duration = self.slack, end - start
        inner: tuple[str, float] | None = None
        inner_end = 0.0
        found: list[float] = []
        for candidate in self._nodes.values():
            if candidate.name == node or candidate.longest <= duration:
                continue
            shift = by if candidate.name == moved else 0.0
            starts, ends = candidate.starts, candidate.ends
            high = bisect.bisect_right(starts, start - shift + slack)
            low = bisect.bisect_left(starts, start - shift - candidate.longest - slack)
            for index in range(high - 1, low - 1, -1):  # the latest-starting container
                if ends[index] + shift + slack >= end and ends[index] - starts[index] > duration:
                    found.append(ends[index] + shift)
                    if inner is None or starts[index] + shift > inner[1]:
                        inner = (candidate.name, starts[index] + shift)
                        inner_end = ends[index] + shift
                    break
        if inner is None:
            return None
        if any(other_end + slack < inner_end for other_end in found):
            return AMBIGUOUS  # they cross: either could hold it
        return inner


def bursts(intervals: Sequence[Span], together: float) -> list[list[Span]]:
    """One node's intervals in bursts: each starts within ``together`` seconds of the one
    before it in its burst, in order of start."""
    groups: list[list[Span]] = []
    for interval in sorted(intervals, key=lambda i: i.start):
        if groups and interval.start - groups[-1][-1].start <= together:
            groups[-1].append(interval)
        else:
            groups.append([interval])
    return groups


def overlapping_siblings(children: Sequence[Span]) -> list[tuple[int, int]]:
    """Pairs of the children of one invocation (indexes) of different nodes that overlap.

    A synchronous caller makes one call at a time, so two of them running at once cannot
    both be its calls.
    """
    order = sorted(range(len(children)), key=lambda i: children[i].start)
    pairs = []
    for position, i in enumerate(order):
        for j in order[position + 1 :]:
            if children[j].start >= children[i].end:
                break
            if children[j].node != children[i].node:
                pairs.append((i, j))
    return pairs


def _index(name: str, intervals: Sequence[Span]) -> _Node:
    items = sorted(intervals, key=lambda i: (i.start, -i.end))
    longest = max((i.end - i.start for i in items), default=0.0)
    return _Node(name, [i.start for i in items], [i.end for i in items], longest)


class Starts:
    """One node's start times, to tell whether an interval was running when one began."""

    def __init__(self, intervals: Sequence[Span]) -> None:
        self._starts = sorted(i.start for i in intervals)

    def crossed(self, start: float, end: float) -> bool:
        """Whether one of the node's intervals started inside ``(start, end)``."""
        index = bisect.bisect_right(self._starts, start)
        return index < len(self._starts) and self._starts[index] < end


@dataclass(frozen=True, slots=True)
class Chance:
    """How many of a target's bursts chance would put inside, or across, a source's,
    each with the standard error of its estimate."""

    contained: float
    contained_error: float
    crossing: float
    crossing_error: float


def by_chance(
    strata: Sequence[Sequence[Sequence[Span]]],
    source: str,
    containers: Containers,
    starts: Starts,
    spread: tuple[float, float],
    window: tuple[float, float],
    rng: random.Random,
    *,
    copies: int = 20,
    budget: int = 4000,
) -> Chance:
    """Expected counts over the target's bursts with the source's invocations shifted in time.

    Each of ``copies`` shifts moves all of the source's invocations together, by between
    ``spread[0]`` and ``spread[1]`` seconds, earlier or later (stratified over that
    range, around the observed ``window`` (its start and length) so that nothing is
    shifted out of it), so that the source keeps its own rhythm (a schedule, a shared
    tick) and the target stays where it is, inside its other callers.  A burst counts
    when one of its invocations is held (or crossed).  The target's bursts come in
    ``strata`` (those the source holds, and the others), each estimated from a sample
    when it is large (at most ``budget`` looks in all).
    """
    low, high = spread
    begin, span = window
    offset = rng.random()
    shifts = []
    for copy in range(copies):
        size = low + (high - low) * (copy // 2 + offset) / ((copies + 1) // 2)
        shifts.append(size if copy % 2 == 0 else -size)
    share = max(1, budget // (copies * max(1, sum(1 for s in strata if s))))
    totals = [0.0, 0.0, 0.0, 0.0]
    for stratum in strata:
        if not stratum:
            continue
        sample = list(stratum) if len(stratum) <= share else rng.sample(list(stratum), share)
        inside: list[float] = []
        across: list[float] = []
        for burst in sample:
            first = burst[0].start
            held = crossed = 0
            for shift in shifts:
                # the source as if ``by`` later, wrapped around the window
                by = first - (begin + (first - shift - begin) % span)
                held += any(
                    containers.parent(i.node, i.start, i.end, source, by) == source for i in burst
                )
                crossed += any(starts.crossed(i.start - by, i.end - by) for i in burst)
            inside.append(held / copies)
            across.append(crossed / copies)
        for index, values in ((0, inside), (2, across)):
            mean, variance = _estimate(values, len(stratum))
            totals[index] += mean
            totals[index + 1] += variance
    return Chance(totals[0], math.sqrt(totals[1]), totals[2], math.sqrt(totals[3]))


def _estimate(values: Sequence[float], population: int) -> tuple[float, float]:
    """The population total a sample's mean gives, and the variance of that estimate."""
    size = len(values)
    mean = sum(values) / size
    if size < 2 or size >= population:
        return mean * population, 0.0
    spread = sum((v - mean) ** 2 for v in values) / (size - 1)
    correction = 1.0 - size / population
    return mean * population, population**2 * spread / size * correction
