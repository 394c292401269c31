"""Benchmark of the heuristic topology: precision and recall from invocation timing alone.

Synthetic invocations of a known call graph (two entry points, nine services, nested
synchronous calls) at several noise levels (extra invocations of each service that no
caller in the graph made, as a share of its real ones) and overlap levels (mean number of
concurrent entry-point invocations).  The miner (``tuner.mining.timing.mine``)
is compared side by side with the naive rule "B overlaps A at least once".

Second, the rate-series miner (``tuner.mining.rates.mine_rates``, for request
counts from Prometheus): the same graph as per-step request counts, at several noise
levels (extra requests of each service from callers outside the graph, which call on
like any request) and traffic levels (mean requests per step of each entry point), side
by side with the naive rule "the rates are correlated (r > 0.5) and the caller is slower".

Target: precision and recall >= 0.9 on a clean signal (no noise, low overlap; for the
rates, no noise at every traffic level).
Run: ``python bench/bench_topology.py [--quick] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "providers" / "kubernetes"))

from prometheus_backfill import poisson  # noqa: E402  # the traffic the Prometheus test backfills

from tuner.mining.rates import RateSeries, mine_rates  # noqa: E402
from tuner.mining.timing import Interval, edge_names, mine, naive, precision_recall  # noqa: E402

GRAPH: Mapping[str, Sequence[str]] = {
    "api": ["auth", "orders", "catalog"],
    "orders": ["inventory", "payments"],
    "payments": ["ledger"],
    "catalog": ["search"],
    "batch": ["reports", "inventory"],
    "reports": ["storage"],
}
ROOTS = ("api", "batch")
TRUE_EDGES = {(a, b) for a, callees in GRAPH.items() for b in callees}
NOISE_LEVELS = (0.0, 0.2, 0.5)
OVERLAP_LEVELS = (0.2, 1.0, 4.0)
"""Mean concurrent invocations of each entry point."""
TARGET = 0.9


def _invoke(node: str, start: float, rng: random.Random, out: list[Interval]) -> float:
    """Simulate one invocation and its nested calls; return its end."""
    now = start + rng.expovariate(1 / 0.004)
    for callee in GRAPH.get(node, ()):
        if rng.random() < 0.9:  # most invocations make each call
            now = _invoke(callee, now, rng, out) + rng.expovariate(1 / 0.002)
    end = now + rng.expovariate(1 / 0.006)
    out.append(Interval(node, start, end, failed=rng.random() < 0.02))
    return end


def synthesise(noise: float, overlap: float, seconds: float, seed: int) -> list[Interval]:
    """Invocations over ``seconds`` at one noise and overlap level."""
    rng = random.Random(seed)
    intervals: list[Interval] = []
    for root in ROOTS:
        probe: list[Interval] = []
        _invoke(root, 0.0, random.Random(seed + 1), probe)
        mean = max(0.01, probe[-1].duration)
        rate = overlap / mean  # Little's law: concurrency = rate x duration
        t = rng.expovariate(rate)
        while t < seconds:
            _invoke(root, t, rng, intervals)
            t += rng.expovariate(rate)
    counts: dict[str, int] = {}
    for interval in intervals:
        counts[interval.node] = counts.get(interval.node, 0) + 1
    for node, count in counts.items():
        if node in ROOTS:
            continue
        for _ in range(int(count * noise)):  # callers outside the graph
            start = rng.uniform(0, seconds)
            intervals.append(Interval(node, start, start + rng.expovariate(1 / 0.01)))
    return intervals


def _scores(
    found: set[tuple[str, str]], naive_found: set[tuple[str, str]], took: float
) -> dict[str, float]:
    """Precision and recall of a method and of the naive rule, and the time it took."""
    p, r = precision_recall(found, TRUE_EDGES)
    np_, nr = precision_recall(naive_found, TRUE_EDGES)
    return {
        "precision": round(p, 3),
        "recall": round(r, 3),
        "naive_precision": round(np_, 3),
        "naive_recall": round(nr, 3),
        "mine_s": round(took, 3),
    }


def run(quick: bool) -> list[dict[str, float]]:
    """Precision and recall of both methods at every level."""
    seconds = 60.0 if quick else 600.0
    rows = []
    for noise in NOISE_LEVELS:
        for overlap in OVERLAP_LEVELS:
            intervals = synthesise(noise, overlap, seconds, seed=int(noise * 100 + overlap * 10))
            started = time.perf_counter()
            mined = mine(intervals)
            took = time.perf_counter() - started
            level = {"noise": noise, "overlap": overlap, "intervals": len(intervals)}
            rows.append(level | _scores(edge_names(mined), naive(intervals), took))
    return rows


TRAFFIC_LEVELS = (2.0, 20.0, 200.0)
"""Mean requests per step of each entry point."""
TOPOLOGICAL = (
    "api",
    "batch",
    "orders",
    "catalog",
    "payments",
    "reports",
    "auth",
    "inventory",
    "ledger",
    "search",
    "storage",
)


def _mean_duration(node: str) -> float:
    return 0.01 + sum(0.9 * _mean_duration(c) for c in GRAPH.get(node, ()))


def synthesise_rates(noise: float, traffic: float, steps: int, seed: int) -> list[RateSeries]:
    """Per-step request counts of the graph: entry points wander, each request calls on."""
    rng = random.Random(seed)
    counts = {n: [0] * steps for n in TOPOLOGICAL}
    for root in ROOTS:
        level = traffic
        for t in range(steps):
            level += rng.gauss(0, 0.15 * traffic) + 0.1 * (traffic - level)
            level = max(0.1 * traffic, level)
            counts[root][t] = poisson(rng, level)
    for node in TOPOLOGICAL:  # callers before callees
        if node not in ROOTS:
            mean = sum(counts[node]) / steps
            for t in range(steps):
                counts[node][t] += poisson(rng, noise * mean)
        for callee in GRAPH.get(node, ()):
            for t in range(steps):
                counts[callee][t] += sum(rng.random() < 0.9 for _ in range(counts[node][t]))
    return [
        RateSeries(n, tuple(float(c) for c in counts[n]), _mean_duration(n)) for n in TOPOLOGICAL
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


def run_rates(quick: bool) -> list[dict[str, float]]:
    """Precision and recall of the rate-series miner and the naive rule at every level."""
    steps = 120 if quick else 480
    rows = []
    for noise in NOISE_LEVELS:
        for traffic in TRAFFIC_LEVELS:
            series = synthesise_rates(noise, traffic, steps, seed=int(noise * 100 + traffic))
            started = time.perf_counter()
            mined = mine_rates(series)
            took = time.perf_counter() - started
            level = {"noise": noise, "traffic": traffic, "steps": steps}
            found = {(e.source, e.target) for e in mined}
            rows.append(level | _scores(found, naive_rates(series), took))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; exit 1 when the clean signal misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 s of invocations per level")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    rows = run(args.quick)
    print(
        f"{'noise':>5} {'overlap':>7} {'invocations':>11}  {'precision':>9} {'recall':>6}"
        f"  {'naive p':>7} {'naive r':>7} {'mine s':>6}"
    )
    for row in rows:
        print(
            f"{row['noise']:5.1f} {row['overlap']:7.1f} {row['intervals']:11d}  "
            f"{row['precision']:9.3f} {row['recall']:6.3f}  {row['naive_precision']:7.3f} "
            f"{row['naive_recall']:7.3f} {row['mine_s']:6.2f}"
        )
    clean = rows[0]
    ok = clean["precision"] >= TARGET and clean["recall"] >= TARGET
    print(
        f"clean signal: precision {clean['precision']:.3f}, recall {clean['recall']:.3f} "
        f"(target >= {TARGET}): {'ok' if ok else 'MISSED'}"
    )
    rates = run_rates(args.quick)
    print(
        f"\nrate series ({rates[0]['steps']} steps):\n"
        f"{'noise':>5} {'traffic':>7}  {'precision':>9} {'recall':>6}"
        f"  {'naive p':>7} {'naive r':>7} {'mine s':>6}"
    )
    for row in rates:
        print(
            f"{row['noise']:5.1f} {row['traffic']:7.1f}  {row['precision']:9.3f} "
            f"{row['recall']:6.3f}  {row['naive_precision']:7.3f} {row['naive_recall']:7.3f} "
            f"{row['mine_s']:6.2f}"
        )
    clean_rates = [row for row in rates if row["noise"] == 0.0]
    rates_ok = all(r["precision"] >= TARGET and r["recall"] >= TARGET for r in clean_rates)
    worst_p = min(r["precision"] for r in clean_rates)
    worst_r = min(r["recall"] for r in clean_rates)
    print(
        f"rate series, clean signal: precision >= {worst_p:.3f}, recall >= {worst_r:.3f} "
        f"(target >= {TARGET}): {'ok' if rates_ok else 'MISSED'}"
    )
    if args.json:
        figures = {"target": TARGET, "rows": rows, "rate_rows": rates}
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if ok and rates_ok else 1


if __name__ == "__main__":
    sys.exit(main())
