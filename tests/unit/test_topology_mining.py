"""The heuristic topology miner on invocation intervals whose calls are known."""

from __future__ import annotations

import math
import random

import pytest

from tuner.mining.calibration import CAP, confidence_of, fit, reliability
from tuner.mining.timing import (
    Interval,
    attribute,
    binomial_tail,
    edge_names,
    mine,
    naive,
    precision_recall,
)


def chain(calls: int, seed: int = 3) -> list[Interval]:
    """A -> B -> C, one call each, spaced out so invocations rarely overlap."""
    rng = random.Random(seed)
    out = []
    t = 0.0
    for _ in range(calls):
        t += rng.uniform(1.0, 3.0)
        out.append(Interval("A", t, t + 0.5))
        out.append(Interval("B", t + 0.1, t + 0.4, failed=rng.random() < 0.1))
        out.append(Interval("C", t + 0.2, t + 0.3))
    return out


def poisson(rng: random.Random, node: str, rate: float, seconds: float, duration: float) -> list:
    """Invocations of one node at Poisson times, with durations around ``duration``."""
    out, t = [], rng.expovariate(rate)
    while t < seconds:
        out.append(Interval(node, t, t + duration * rng.uniform(0.5, 1.5)))
        t += rng.expovariate(rate)
    return out


def test_a_chain_gives_its_two_edges_and_not_the_transitive_one() -> None:
    edges = mine(chain(50))
    assert edge_names(edges) == {("A", "B"), ("B", "C")}
    ab = next(e for e in edges if e.target == "B")
    assert ab.calls == 50 and ab.expected < 5 and ab.p_value < 1e-30
    assert 0.9 < ab.confidence <= CAP < 1.0  # timing alone never claims certainty
    assert ab.errors == sum(1 for i in chain(50) if i.node == "B" and i.failed)


def test_unrelated_invocations_give_no_edges_where_the_naive_rule_gives_many() -> None:
    rng = random.Random(5)
    intervals = []
    for node in ("A", "B", "C"):
        intervals += poisson(rng, node, 1.0, 300.0, 0.5)
    assert mine(intervals) == []
    assert len(naive(intervals)) == 6  # every pair overlaps somewhere


def test_too_few_calls_are_little_evidence() -> None:
    assert mine(chain(2)) == []
    few = mine(chain(2), min_calls=2, min_confidence=0.0)
    assert edge_names(few) == {("A", "B"), ("B", "C")}
    many = {e.target: e.confidence for e in mine(chain(50))}
    assert all(e.confidence < many[e.target] for e in few)


def test_functions_that_fire_together_on_a_schedule_are_not_a_call() -> None:
    """A cron schedule starts A and B within a few ms of each other, in either order."""
    rng = random.Random(11)
    intervals = []
    for second in range(600):
        for node, duration in (("A", 0.2), ("B", 0.02)):
            start = second + rng.uniform(-0.003, 0.003)
            intervals.append(Interval(node, start, start + duration * rng.uniform(0.8, 1.2)))
    given = attribute(intervals)
    assert len(given[("A", "B")]) > 250  # B sits inside A half the time: it looks like a call
    assert mine(intervals, min_confidence=0.0) == [] or all(
        e.confidence < 0.5 for e in mine(intervals, min_confidence=0.0)
    )


def test_a_call_between_scheduled_functions_is_still_found() -> None:
    rng = random.Random(12)
    intervals = []
    for second in range(300):
        start = second + rng.uniform(-0.003, 0.003)
        intervals.append(Interval("A", start, start + 0.3))
        called = start + rng.uniform(0.05, 0.2)
        intervals.append(Interval("B", called, called + 0.05))
        other = second + rng.uniform(-0.003, 0.003)  # fires with A, calls nothing
        intervals.append(Interval("C", other, other + 0.01))
    assert edge_names(mine(intervals)) == {("A", "B")}


def test_a_shared_tick_does_not_make_independent_functions_call_each_other() -> None:
    """Every arrival waits for the next tick of one 50 ms clock (phase-locked starts)."""
    rng = random.Random(13)
    intervals = []
    for node, rate, duration in (("A", 4.0, 0.03), ("B", 6.0, 0.004), ("C", 3.0, 0.01)):
        for i in poisson(rng, node, rate, 600.0, duration):
            start = math.ceil(i.start / 0.05) * 0.05 + rng.uniform(0, 0.0005)
            intervals.append(Interval(node, start, start + i.duration))
    assert edge_names(mine(intervals)) == set()


def test_traffic_that_rises_and_falls_together_is_not_a_call() -> None:
    """Two independent functions with the same daily cycle (one cycle over the run)."""
    rng = random.Random(14)
    seconds, intervals = 1200.0, []
    for node, rate, duration in (("A", 3.0, 0.3), ("B", 3.0, 0.02)):
        t = 0.0
        while t < seconds:
            t += rng.expovariate(rate * 5)
            if rng.random() < (1 + math.sin(2 * math.pi * t / seconds)) / 2:
                intervals.append(Interval(node, t, t + duration * rng.uniform(0.5, 1.5)))
    assert edge_names(mine(intervals)) == set()


def test_a_long_job_on_a_schedule_does_not_call_what_runs_meanwhile() -> None:
    """A job that runs 70% of the time, every 0.5 s like clockwork, holds most of an
    unrelated function's invocations: as many as chance gives for so regular a job."""
    rng = random.Random(17)
    intervals = [Interval("job", i * 0.5, i * 0.5 + 0.35) for i in range(1200)]
    intervals += poisson(rng, "F", 4.0, 600.0, 0.01)
    assert len(attribute(intervals)[("job", "F")]) > 1500
    assert edge_names(mine(intervals)) == set()


def _split(node: str, start: float, parts: int, rng: random.Random) -> list[Interval]:
    """A payload split into ``parts`` that start within a few ms of each other."""
    out = []
    for _ in range(parts):
        begin = start + rng.uniform(0, 0.004)
        out.append(Interval(node, begin, begin + rng.uniform(0.2, 0.25)))
    return out


def test_parts_that_start_together_are_one_observation_not_several() -> None:
    """A runs 0.3 s every second; B's payloads, split in 5 parts each, arrive at random,
    and by coincidence 8 of 30 of them land inside A (chance gives about 3)."""
    rng = random.Random(21)
    scheduled = [Interval("A", s, s + 0.3) for s in range(70)]
    starts = [2 * j + rng.uniform(0.35, 0.7) for j in range(30)]
    for j in range(8):
        starts[3 * j] = 6 * j + 0.03  # inside A's invocation of that second
    split = [part for start in starts for part in _split("B", start, 5, rng)]
    edges = mine(scheduled + split, min_confidence=0.0)
    assert [(e.source, e.calls, e.bursts) for e in edges] == [("A", 40, 8)]
    assert edges[0].confidence < 0.9
    # as many invocations inside A of as many in all, had they come one at a time: a call
    apart = list(scheduled)
    for second in range(70):
        if second < 40:
            apart.append(Interval("B", second + 0.03, second + 0.26))
        for _ in range(1 + second % 2 + (second < 5)):
            begin = second + rng.uniform(0.35, 0.7)
            apart.append(Interval("B", begin, begin + 0.23))
    assert sum(1 for i in apart if i.node == "B") == len(split)
    assert [(e.calls, e.bursts) for e in mine(apart)] == [(40, 40)]


def test_a_caller_that_fans_out_in_parallel_is_still_found() -> None:
    rng = random.Random(22)
    intervals = poisson(rng, "other", 1.0, 200.0, 0.3)
    for i in poisson(rng, "A", 0.5, 200.0, 0.5):
        intervals.append(Interval("A", i.start, i.start + 0.5))
        intervals += _split("B", i.start + 0.05, 4, rng)
    edges = mine(intervals)
    assert edge_names(edges) == {("A", "B")}
    assert edges[0].calls == pytest.approx(4 * edges[0].bursts, rel=0.05)  # one burst per call


def test_a_dependency_never_calls_even_when_its_calls_hold_a_function() -> None:
    """F runs while X waits for a slow db call: the innermost interval around F is db's,
    and X, which makes one call at a time, cannot have called F meanwhile either."""
    rng = random.Random(15)
    intervals = []
    for x in poisson(rng, "X", 2.0, 300.0, 0.35):
        intervals.append(x)
        intervals.append(Interval("db", x.start + 0.01, x.end - 0.01))
        if rng.random() < 0.7:
            f = x.start + rng.uniform(0.02, x.duration - 0.03)
            intervals.append(Interval("F", f, f + 0.002))
    assert ("db", "F") in edge_names(mine(intervals))  # with every node a possible caller
    assert edge_names(mine(intervals, callers={"X", "F"})) == {("X", "db")}


def test_a_callee_that_fills_its_caller_is_never_its_caller() -> None:
    """Clocks that disagree by more than the caller's own work (the slack) make the two
    intervals contain each other: the longer one is the caller."""
    rng = random.Random(16)
    intervals = []
    for i in range(200):
        start = i * 1.0 + rng.uniform(0, 0.5)
        intervals.append(Interval("caller", start, start + 0.1012))
        intervals.append(Interval("callee", start + 0.0005, start + 0.1005))
    assert edge_names(mine(intervals, slack=0.002)) == {("caller", "callee")}


def test_of_two_calls_at_once_under_one_caller_the_odd_one_is_no_evidence() -> None:
    """A synchronous caller makes one call at a time: of two invocations running at once
    inside the same invocation of A, the one A holds less often is taken as no call."""
    intervals = [
        Interval("A", 0.0, 1.0),
        Interval("B", 0.1, 0.5),  # a co-fired function's callee, say ...
        Interval("C", 0.3, 0.6),  # ... overlapping C, which A holds more often
        Interval("D", 0.7, 0.8),  # after them: a call like any other
        Interval("A", 2.0, 3.0),
        Interval("C", 2.1, 2.2),
        Interval("A", 4.0, 5.0),
        Interval("C", 4.1, 4.2),
        Interval("A", 6.0, 7.0),
        Interval("B", 6.1, 6.2),  # B alone is evidence ...
        Interval("E", 6.15, 6.3),  # ... and E, held less often than B, is not
        Interval("A", 8.0, 9.0),
        Interval("D", 8.1, 8.2),
        Interval("F", 8.15, 8.3),  # as often as D: neither
        Interval("F", 10.0, 10.1),
        Interval("A", 9.5, 10.5),
    ]
    given = {pair: len(v) for pair, v in attribute(intervals).items()}
    assert given == {("A", "B"): 1, ("A", "C"): 3, ("A", "D"): 1, ("A", "F"): 1}


def test_an_invocation_between_crossing_containers_is_given_to_no_one() -> None:
    intervals = [
        Interval("A", 0.0, 1.0),
        Interval("B", 0.5, 1.5),
        Interval("C", 0.6, 0.9),  # inside both A and B, which cross: who called it?
        Interval("D", 2.0, 3.0),
        Interval("C", 2.1, 2.2),
    ]
    assert {pair: len(v) for pair, v in attribute(intervals).items()} == {("D", "C"): 1}


@pytest.mark.parametrize(
    ("k", "n", "p", "expected"),
    [
        (10, 10, 0.5, 1 / 1024),
        (0, 10, 0.3, 1.0),
        (1, 1, 0.25, 0.25),
        (3, 2, 0.5, 0.0),
        (2, 4, 0.0, 0.0),
    ],
)
def test_binomial_tail(k: int, n: int, p: float, expected: float) -> None:
    assert binomial_tail(k, n, p) == pytest.approx(expected)


def test_precision_and_recall() -> None:
    assert precision_recall({("a", "b"), ("a", "c")}, {("a", "b"), ("b", "c")}) == (0.5, 0.5)
    assert precision_recall(set(), set()) == (1.0, 1.0)


def test_the_calibration_recovers_the_share_of_real_edges_from_labelled_samples() -> None:
    rng = random.Random(21)

    def share(evidence: float) -> float:
        return 1.0 / (1.0 + math.exp(-(evidence - 6.0)))

    samples = []
    for _ in range(20_000):
        x = rng.uniform(0.0, 20.0)
        samples.append((10.0**-x, rng.random() < share(x)))
    knots = fit(samples)
    assert len(knots) <= 16
    assert [y for _, y in knots] == sorted(y for _, y in knots)  # isotonic
    for x in (1.0, 4.0, 6.0, 8.0, 12.0):
        assert confidence_of(10.0**-x, knots, cap=1.0) == pytest.approx(share(x), abs=0.08)
    assert confidence_of(1e-300, knots) == CAP  # never certain


def test_the_shipped_calibration_rises_with_the_evidence_and_stays_below_one() -> None:
    values = [confidence_of(10.0**-x) for x in range(0, 40)]
    assert values == sorted(values)
    assert values[0] < 0.2 and values[-1] == CAP < 1.0


def test_reliability_compares_claims_with_the_true_share_per_bin() -> None:
    claims = [(0.05, False)] * 9 + [(0.05, True)] + [(0.95, True)] * 18 + [(1.0, False)] * 2
    bins = reliability(claims, (0.0, 0.5, 1.0))
    assert [(b.low, b.claims) for b in bins] == [(0.0, 10), (0.5, 20)]
    low, high = bins
    assert low.claimed == pytest.approx(0.05) and low.true_share == pytest.approx(0.1)
    assert high.claimed == pytest.approx(0.955) and high.true_share == pytest.approx(0.9)
    assert high.gap == pytest.approx(0.055)
