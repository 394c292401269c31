"""The heuristic topology miner on invocation intervals with known structure."""

from __future__ import annotations

import random

import pytest

from tuner.mining.timing import (
    Interval,
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


def test_a_chain_gives_its_two_edges_and_not_the_transitive_one() -> None:
    edges = mine(chain(50))
    assert edge_names(edges) == {("A", "B"), ("B", "C")}
    ab = next(e for e in edges if e.target == "B")
    assert ab.calls == 50 and ab.confidence > 0.999 and ab.expected < 50
    assert ab.errors == sum(1 for i in chain(50) if i.node == "B" and i.failed)


def test_unrelated_invocations_give_no_edges_where_the_naive_rule_gives_many() -> None:
    rng = random.Random(5)
    intervals = []
    for node in ("A", "B", "C"):
        for _ in range(300):
            start = rng.uniform(0, 300)
            intervals.append(Interval(node, start, start + rng.uniform(0.1, 1.0)))
    assert mine(intervals) == []
    assert len(naive(intervals)) == 6  # every pair overlaps somewhere


def test_too_few_calls_are_no_evidence() -> None:
    assert mine(chain(2)) == []
    assert edge_names(mine(chain(2), min_calls=2, min_confidence=0.9)) == {("A", "B"), ("B", "C")}


def test_noise_below_the_share_keeps_the_edges() -> None:
    rng = random.Random(9)
    noisy = chain(100)
    for _ in range(20):  # callers outside the graph
        start = rng.uniform(0, 200)
        noisy.append(Interval("C", start, start + 0.1))
    assert edge_names(mine(noisy)) == {("A", "B"), ("B", "C")}


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
