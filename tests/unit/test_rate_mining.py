"""The rate-series miner: edges from request counts per step, with a shift-null confidence."""

from __future__ import annotations

import math
import random

import pytest

from tuner.mining.rates import RateSeries, mine_rates


def wandering(rng: random.Random, steps: int, mean: float) -> list[int]:
    """Requests per step of an entry point whose traffic wanders around ``mean``."""
    level, out = mean, []
    for _ in range(steps):
        level = max(1.0, level + rng.gauss(0, 0.2 * mean) + 0.1 * (mean - level))
        out.append(max(0, round(rng.gauss(level, math.sqrt(level)))))
    return out


def called(rng: random.Random, caller: list[int], share: float) -> list[int]:
    """Requests a callee receives when each of the caller's requests calls it with ``share``."""
    return [sum(rng.random() < share for _ in range(n)) for n in caller]


def series(node: str, counts: list[int], duration_s: float | None) -> RateSeries:
    return RateSeries(node, tuple(float(c) for c in counts), duration_s)


def chain(steps: int = 200, seed: int = 2) -> list[RateSeries]:
    rng = random.Random(seed)
    a = wandering(rng, steps, 30)
    b = called(rng, a, 0.9)
    c = called(rng, b, 0.8)
    lone = wandering(rng, steps, 30)
    return [
        series("a", a, 0.3),
        series("b", b, 0.1),
        series("c", c, 0.02),
        series("lone", lone, 0.9),  # slowest of all, and calls nobody
    ]


def test_a_chain_gives_its_edges_and_not_the_transitive_one() -> None:
    edges = {(e.source, e.target): e for e in mine_rates(chain())}

    assert set(edges) == {("a", "b"), ("b", "c")}
    for edge in edges.values():
        assert 0.9 <= edge.confidence < 1.0  # calibrated: never certain
        assert edge.correlation > 0.5
        assert edge.lag == 0
    counted = chain()
    calls_to_b = sum(counted[1].counts)
    assert edges[("a", "b")].calls == pytest.approx(calls_to_b, rel=0.1)


def test_the_slower_service_is_the_caller() -> None:
    a, b, c, lone = chain()
    swapped = [
        RateSeries("a", a.counts, 0.05),
        RateSeries("b", b.counts, 0.4),
        c,
        lone,
    ]

    found = {(e.source, e.target) for e in mine_rates(swapped)}

    assert ("b", "a") in found
    assert ("a", "b") not in found


def test_a_shared_daily_cycle_is_not_a_call() -> None:
    rng = random.Random(5)
    steps = 240
    cycle = [40 + 30 * math.sin(2 * math.pi * t / steps) for t in range(steps)]
    one = [max(0, round(rng.gauss(m, math.sqrt(m)))) for m in cycle]
    other = [max(0, round(rng.gauss(m, math.sqrt(m)))) for m in cycle]

    assert mine_rates([series("web", one, 0.5), series("jobs", other, 0.1)]) == []


def test_a_call_one_step_late_is_found_with_its_lag() -> None:
    rng = random.Random(9)
    a = wandering(rng, 200, 30)
    b = called(rng, [0, *a[:-1]], 0.9)  # answered in the next step (a queue between them)

    [edge] = mine_rates([series("a", a, 0.5), series("b", b, 0.1)])

    assert (edge.source, edge.target, edge.lag) == ("a", "b", 1)


def test_too_few_steps_tell_nothing_from_chance() -> None:
    short = [RateSeries(s.node, s.counts[:15], s.mean_duration_s) for s in chain()]
    assert mine_rates(short) == []


def test_series_must_be_aligned() -> None:
    a, b, *_ = chain()
    with pytest.raises(ValueError, match="aligned"):
        mine_rates([a, RateSeries("b", b.counts[:-1], 0.1)])


def test_only_the_services_that_may_call_are_callers() -> None:
    a, b, c, lone = chain()
    found = {(e.source, e.target) for e in mine_rates([a, b, c, lone], callers={"b"})}
    assert found == {("b", "c")}  # a -> b needs a as a caller
