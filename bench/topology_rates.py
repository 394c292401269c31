"""The rate-series miner on random applications: what Prometheus would hold of their traffic.

The invocations of :mod:`topology_apps` are counted per step (one second: requests per
step, as a ``rate()`` over a request counter gives) with each node's mean duration, and
mined by ``tuner.mining.rates.mine_rates``, beside the naive rule "the rates are
correlated (r > 0.5) and the caller is slower".
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import Any

from topology_apps import KINDS, duration, generate, simulate

from tuner.mining.rates import RateSeries, mine_rates
from tuner.mining.timing import Interval, precision_recall

STEP_S = 1.0
DRAWN = 0.9


def series_of(intervals: Sequence[Interval], seconds: float) -> list[RateSeries]:
    """Requests per step of each node (by start), with its mean duration."""
    steps = int(seconds / STEP_S)
    counts: dict[str, list[float]] = {}
    durations: dict[str, list[float]] = {}
    for interval in intervals:
        step = int(interval.start / STEP_S)
        if 0 <= step < steps:
            counts.setdefault(interval.node, [0.0] * steps)[step] += 1
            durations.setdefault(interval.node, []).append(interval.duration)
    return [
        RateSeries(node, tuple(values), sum(durations[node]) / len(durations[node]))
        for node, values in sorted(counts.items())
    ]


def naive_rates(series: Sequence[RateSeries]) -> set[tuple[str, str]]:
    """The naive rule: rates correlated (r > 0.5) and the caller slower."""
    found = set()
    for a in series:
        for b in series:
            slower = (a.mean_duration_s or 0) > (b.mean_duration_s or 0)
            if a.node != b.node and slower and _correlation(a.counts, b.counts) > 0.5:
                found.add((a.node, b.node))
    return found


def _correlation(x: Sequence[float], y: Sequence[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else 0.0


def run_rates(apps: int, span: tuple[float, float], first_seed: int = 0) -> dict[str, Any]:
    """Mine ``apps`` applications of each kind; scores per kind and every claim."""
    rows = []
    claims: list[tuple[float, float, bool]] = []
    for kind in KINDS:
        found: set[tuple[int, str, str]] = set()
        naive_found: set[tuple[int, str, str]] = set()
        truth: set[tuple[int, str, str]] = set()
        started = time.perf_counter()
        for seed in range(first_seed, first_seed + apps):
            app = generate(random.Random(seed), kind)
            seconds = duration(seed, span)
            series = series_of(simulate(app, kind, seconds, random.Random(seed)), seconds)
            edges = mine_rates(series, callers=app.functions, min_confidence=0.0)
            claims += [(e.p_value, e.confidence, (e.source, e.target) in app.truth) for e in edges]
            found |= {(seed, e.source, e.target) for e in edges if e.confidence >= DRAWN}
            naive_found |= {(seed, *e) for e in naive_rates(series)}
            truth |= {(seed, *e) for e in app.truth}
        p, r = precision_recall(found, truth)
        naive_p, naive_r = precision_recall(naive_found, truth)
        rows.append(
            {
                "traffic": kind,
                "precision": p,
                "recall": r,
                "naive_precision": naive_p,
                "naive_recall": naive_r,
                "seconds": time.perf_counter() - started,
            }
        )
    return {"kinds": rows, "claims": claims}


def print_rates(rows: list[dict[str, Any]], span: tuple[float, float]) -> None:
    """Print the rate-series figures."""
    print(
        f"\nrate series: the same kind of applications, "
        f"{span[0] / STEP_S:.0f} to {span[1] / STEP_S:.0f} steps of 1 s"
    )
    print(f"{'traffic':9} {'precision':>9} {'recall':>6}  {'naive p':>7} {'naive r':>7} {'s':>5}")
    for row in rows:
        print(
            f"{row['traffic']:9} {row['precision']:9.3f} {row['recall']:6.3f}  "
            f"{row['naive_precision']:7.3f} {row['naive_recall']:7.3f} {row['seconds']:5.1f}"
        )
