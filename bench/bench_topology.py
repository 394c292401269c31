"""Benchmark of the heuristic topology: precision, recall and calibration on random applications.

1. **Timing** (``tuner.mining.timing.mine``): random applications (``topology_apps``:
   DAGs of nested calls, shared dependencies, functions that call nothing, independent
   functions whose traffic shares a daily cycle and bursts) under three kinds of traffic:
   Poisson arrivals, functions that fire together on a schedule, and one shared 50 ms
   tick, each for one to ten minutes.  Every candidate edge is mined with its
   confidence; the edges drawn are those at 0.9 or more.  Printed per kind: precision
   and recall of the edges between functions (what timing draws on the local host and on
   AWS) and of the calls to dependencies, beside the naive rule "B overlaps A at least
   once"; then the calibration: claimed confidence against the true share, per bin.
2. **Rate series** (``tuner.mining.rates.mine_rates``, for Prometheus' request counts):
   per-step counts of the same applications (``topology_rates``), beside the naive rule
   "the rates are correlated (r > 0.5) and the caller is slower", and its calibration.
3. **The local host for real** (``topology_host``): a small random application as real
   handlers, driven by the host's traffic (Poisson, then a shared schedule); the edges
   ``tuner topology --source timing`` draws must all be true.

Targets, for both miners over every kind of traffic: precision >= 0.9 of the edges drawn
(those claimed at 0.9 or more); no bin of 30 claims or more off by more than 0.1.  On
the host: no false edge, every dependency call drawn.  ``--quick`` (a dozen shorter
applications per kind) holds only the timing precision and the host: the bins and the
rate series need the full run's applications.
Run: ``python bench/bench_topology.py [--quick] [--jobs N] [--json FILE] [--fit]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from topology_apps import KINDS, App, duration, generate, simulate  # noqa: E402
from topology_rates import print_rates, run_rates  # noqa: E402

from tuner.mining.calibration import (  # noqa: E402
    EVIDENCE_LIMIT,
    RATE_EVIDENCE_LIMIT,
    Bin,
    fit,
    reliability,
)
from tuner.mining.timing import MinedEdge, mine, naive, precision_recall  # noqa: E402

TARGET = 0.9
DRAWN = 0.9
"""The confidence from which an edge is drawn (``tuner topology``'s default)."""
MAX_GAP = 0.1
MIN_BIN = 30
"""Bins with fewer claims are shown but not held to the gap (their share is too noisy)."""
BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
FIT_SEEDS = 10_000
"""The calibrations are fitted on seeds from here; the benchmark scores seeds from 0."""
APPS = {"timing": 250, "rates": 60, "quick": 12}
"""Applications scored per kind of traffic.  The timing miner's claims between 0.3 and
0.8 come a few from each application, so its bins need a few hundred applications to
hold their share within a few hundredths; with 60, a bin's share swings by 0.1 or more
from one set of applications to the next."""
FIT_APPS = {"KNOTS": 400, "RATE_KNOTS": 150}
"""Applications per kind of traffic each calibration is fitted on."""
SPAN = (60.0, 600.0)
"""Each application's traffic lasts between these many seconds (log-uniform): the
calibration is fitted and checked over windows of one to ten minutes."""
RATE_SPAN = (120.0, 600.0)
"""The same for the rate-series miner, at one step a second (it needs ~100 steps)."""
QUICK_SPAN, QUICK_RATE_SPAN = (60.0, 180.0), (120.0, 240.0)


def mined(
    app: App, kind: str, span: tuple[float, float], seed: int
) -> tuple[list[MinedEdge], set[Any]]:
    """Every candidate edge of one simulated run, and the naive rule's edges."""
    rng = random.Random(seed)
    intervals = simulate(app, kind, duration(seed, span), rng)
    edges = mine(intervals, callers=set(app.functions), min_confidence=0.0, seed=seed)
    return edges, naive(intervals)


def _score(found: set[Any], truth: set[Any], naive_found: set[Any]) -> dict[str, float]:
    p, r = precision_recall(found, truth)
    naive_p, _ = precision_recall(naive_found, truth)
    return {"precision": p, "recall": r, "naive_precision": naive_p}


def _one(kind: str, seed: int, span: tuple[float, float]) -> dict[str, Any]:
    """One application of one kind of traffic: its claims, and its edges by group."""
    app = generate(random.Random(seed), kind)
    edges, naive_found = mined(app, kind, span, seed)
    claims = [(e.p_value, e.confidence, (e.source, e.target) in app.truth) for e in edges]
    drawn = {(e.source, e.target) for e in edges if e.confidence >= DRAWN}
    groups = {}
    for group, targets in (("functions", app.functions), ("dependencies", app.dependencies)):
        groups[group] = [
            {(seed, *e) for e in chosen if e[1] in targets}
            for chosen in (drawn, app.truth, naive_found)
        ]
    return {"claims": claims, "groups": groups}


def run_timing(
    apps: int, span: tuple[float, float], first_seed: int = 0, jobs: int = 1
) -> dict[str, Any]:
    """Mine ``apps`` applications of each kind, in ``jobs`` processes; scores per kind and
    every claim."""
    per_kind: dict[str, dict[str, Any]] = {}
    claims: list[tuple[float, float, bool]] = []
    with ProcessPoolExecutor(jobs) as pool:
        for kind in KINDS:
            totals = {"functions": [set(), set(), set()], "dependencies": [set(), set(), set()]}
            started = time.perf_counter()
            seeds = range(first_seed, first_seed + apps)
            for one in pool.map(_one, [kind] * apps, seeds, [span] * apps, chunksize=4):
                claims += one["claims"]
                for group, sets in one["groups"].items():
                    for total, part in zip(totals[group], sets, strict=True):
                        total |= part
            per_kind[kind] = {
                group: _score(found, truth, naive_edges)
                for group, (found, truth, naive_edges) in totals.items()
            } | {"seconds": time.perf_counter() - started}
    return {"kinds": per_kind, "claims": claims}


def calibration(
    claims: Sequence[tuple[float, float, bool]],
) -> tuple[list[Bin], float, int, bool]:
    """The bins, the true share of the claims at DRAWN or more and their number, and whether
    every bin of MIN_BIN claims or more is within MAX_GAP."""
    bins = reliability([(c, true) for _, c, true in claims], BINS)
    high = [true for _, c, true in claims if c >= DRAWN]
    share = sum(high) / len(high) if high else 1.0
    held = all(b.gap <= MAX_GAP for b in bins if b.claims >= MIN_BIN)
    return bins, share, len(high), held


def print_calibration(claims: Sequence[tuple[float, float, bool]]) -> tuple[bool, bool]:
    """Print claimed confidence against the true share; whether the edges drawn meet the
    precision target, and whether every bin meets the calibration target."""
    bins, share, count, held = calibration(claims)
    print(f"calibration over {len(claims)} candidate edges:")
    print(f"{'confidence':>11} {'claims':>6} {'claimed':>7} {'true':>6} {'gap':>6}")
    for b in bins:
        mark = "" if b.claims >= MIN_BIN else "  (few)"
        print(
            f"{b.low:4.1f}-{b.high:<4.2f}  {b.claims:6d} {b.claimed:7.3f} "
            f"{b.true_share:6.3f} {b.gap:6.3f}{mark}"
        )
    print(
        f"drawn (claimed at >= {DRAWN}), every kind of traffic: {count} edges, precision "
        f"{share:.3f} (target >= {TARGET}); every bin of {MIN_BIN}+ claims within "
        f"{MAX_GAP}: {'yes' if held else 'NO'}"
    )
    return share >= TARGET, held


def print_timing(result: dict[str, Any], apps: int, span: tuple[float, float]) -> tuple[bool, bool]:
    """Print the timing figures; whether they meet the precision and calibration targets."""
    print(
        f"timing: {apps} random applications per kind, "
        f"{span[0]:.0f} to {span[1]:.0f} s of traffic each"
    )
    print(
        f"{'traffic':9} {'edges':12} {'precision':>9} {'recall':>6} {'naive p':>7}  {'mine s':>6}"
    )
    for kind, scores in result["kinds"].items():
        for group in ("functions", "dependencies"):
            s = scores[group]
            took = f"{scores['seconds']:6.1f}" if group == "functions" else ""
            print(
                f"{kind:9} {group:12} {s['precision']:9.3f} {s['recall']:6.3f} "
                f"{s['naive_precision']:7.3f}  {took}"
            )
    print()
    return print_calibration(result["claims"])


def run_fit(save: Path | None, jobs: int) -> None:
    """Fit both calibrations on seeds the benchmark does not score, and print them."""
    timing = run_timing(FIT_APPS["KNOTS"], SPAN, first_seed=FIT_SEEDS, jobs=jobs)
    rates = run_rates(FIT_APPS["RATE_KNOTS"], RATE_SPAN, first_seed=FIT_SEEDS)
    samples = {}
    for name, claims, limit, blocks in (
        ("KNOTS", timing["claims"], EVIDENCE_LIMIT, 16),
        ("RATE_KNOTS", rates["claims"], RATE_EVIDENCE_LIMIT, 12),
    ):
        samples[name] = [(p, true) for p, _, true in claims]
        knots = fit(samples[name], blocks=blocks, limit=limit)
        print(f"{name} = {knots!r}  # from {len(claims)} candidate edges")
    if save:
        save.write_text(json.dumps(samples))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the tables; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter applications")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--fit", action="store_true", help="fit the calibrations and stop")
    parser.add_argument("--no-host", action="store_true", help="skip the local host run")
    parser.add_argument("--jobs", type=int, default=2, help="processes mining the timing")
    args = parser.parse_args(argv)
    apps, rate_apps = (
        (APPS["quick"], APPS["quick"]) if args.quick else (APPS["timing"], APPS["rates"])
    )
    span, rate_span = (QUICK_SPAN, QUICK_RATE_SPAN) if args.quick else (SPAN, RATE_SPAN)
    if args.fit:
        run_fit(args.json, args.jobs)
        return 0
    timing = run_timing(apps, span, jobs=args.jobs)
    precise, calibrated = print_timing(timing, apps, span)
    rates = run_rates(rate_apps, rate_span)
    print_rates(rates["kinds"], rate_span)
    rates_precise, rates_calibrated = print_calibration(rates["claims"])
    ok = precise and (args.quick or (calibrated and rates_precise and rates_calibrated))
    if args.quick:
        print(
            "--quick holds the timing edges' precision and the host; calibration per bin and "
            "the rate series are judged on the full run (a dozen applications are too few: "
            "their edges come in clusters)"
        )
    figures: dict[str, Any] = {"timing": timing["kinds"], "rates": rates["kinds"]}
    if not args.no_host:
        from topology_host import print_host, run_host

        host = run_host(quick=args.quick)
        ok = print_host(host) and ok
        figures["host"] = host
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
