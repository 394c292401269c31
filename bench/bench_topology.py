"""Benchmark of the heuristic topology: precision and recall from invocation timing alone.

Synthetic invocations of a known call graph (two entry points, nine services, nested
synchronous calls) at several noise levels (extra invocations of each service that no
caller in the graph made, as a share of its real ones) and overlap levels (mean number of
concurrent entry-point invocations).  The miner (``tuner.engine.topology_mining.mine``)
is compared side by side with the naive rule "B overlaps A at least once".

Target: precision and recall >= 0.9 on a clean signal (no noise, low overlap).
Run: ``python bench/bench_topology.py [--quick] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tuner.engine.topology_mining import Interval, edge_names, mine, naive, precision_recall

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
            p, r = precision_recall(edge_names(mined), TRUE_EDGES)
            np_, nr = precision_recall(naive(intervals), TRUE_EDGES)
            rows.append(
                {
                    "noise": noise,
                    "overlap": overlap,
                    "intervals": len(intervals),
                    "precision": round(p, 3),
                    "recall": round(r, 3),
                    "naive_precision": round(np_, 3),
                    "naive_recall": round(nr, 3),
                    "mine_s": round(took, 3),
                }
            )
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
    if args.json:
        args.json.write_text(json.dumps({"target": TARGET, "rows": rows}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
