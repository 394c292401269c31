"""Benchmark: tuner against the strategies people use instead, on the same simulated fleet.

Every strategy runs on its own copy of one seeded fleet (the ``sim`` provider), with the
same traffic: tuner through its real loop, store and notifier with the bundled rules
(right-sizing applied rather than recommended, as every peer applies its own), and the
models of VPA, Compute Optimizer and Power Tuning in ``bench/peers.py``.  Each is scored
against the functions' true optimum.

Run: ``python bench/bench_tuning.py [--quick] [--functions N] [--days D] [--seed S]
[--json FILE] [--explain N]``; ``--explain N`` lists tuner's N functions whose settled cost
is furthest over their optimum, with the decision that sized each.
Targets for tuner: >= 95% of OOMs fixed in one step, cost within 5% of the optimum once
settled, 0 synthetic invocations, 0 flapping, fewer failed invocations than every peer.

Probes (tuner re-runs one invocation killed for memory per function and window at a
higher limit) are counted apart, in ``probe_invocations``, and their cost is in the cost
against the optimum: they are re-runs of real failed requests, not made-up ones, so
``synthetic_invocations`` counts only invocations with invented payloads (Power Tuning's).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import PEERS, run_peer  # noqa: E402

from tuner.daemon.logs import configure  # noqa: E402
from tuner.daemon.simulating import simulate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIELDS = (
    "oom_one_step_fraction",
    "redeploys_per_oom_mean",
    "failed_invocations",
    "cost_ratio_to_optimum",
    "synthetic_invocations",
    "probe_invocations",
    "flapping_changes",
)


def applied_rules(directory: Path) -> Path:
    """The bundled rules with right-sizing applied instead of recommended."""
    text = (ROOT / "rules" / "default.yaml").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() != "mode: recommend"]
    path = directory / "default.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def explain(sim: Any, db: Path, count: int) -> list[str]:
    """Lines on the ``count`` functions whose settled cost is furthest over their optimum.

    Each gives its workload, its memory against its need and optimum, the points of the
    fleet's cost ratio it adds, and the last memory decision tuner applied to it.
    """
    from tuner.domain.lifecycle import State
    from tuner.domain.model import FunctionRef
    from tuner.store.audit import SqliteStore

    provider = sim.provider
    costs = provider.ledger.costs()
    optimum = sum(o for _, o in costs) or 1.0
    worst = sorted(range(len(costs)), key=lambda i: costs[i][1] - costs[i][0])[:count]
    store = SqliteStore(db)
    lines = []
    try:
        for i in worst:
            w, (cost, best) = provider.workloads[i], costs[i]
            memory = provider.read(FunctionRef(provider.name, w.name)).memory_mb
            lines.append(
                f"  {w.name} {w.kind:8} {memory:5d} MB, needs {w.need_mb:5.0f}, optimum "
                f"{w.optimum_mb():5d}; +{100 * (cost - best) / optimum:.2f} points "
                f"(cpu {w.cpu_ms:.0f} ms, io {w.io_ms:.0f} ms, timeout {w.timeout_s:g} s)"
            )
            ref = FunctionRef(provider.name, w.name)
            changes = [
                d
                for d in store.decisions(ref=ref)
                if d.state in (State.APPLIED, State.IMPROVED, State.UNCHANGED)
                and d.change is not None
            ]
            lines.append(f"    {changes[-1].summary if changes else 'never changed'}")
    finally:
        store.close()
    return lines


def main() -> int:
    """Run every strategy, print a table and optionally write JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small fleet for a few days (CI)")
    ap.add_argument("--functions", type=int, default=300)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--window", type=float, default=900.0, help="cycle interval in seconds")
    ap.add_argument("--rules", help="tuner's rule file or directory (default: the bundled rules)")
    ap.add_argument("--json", dest="json_file")
    ap.add_argument(
        "--explain",
        type=int,
        default=0,
        metavar="N",
        help="list tuner's N functions costing most over their optimum, and why",
    )
    args = ap.parse_args()
    if args.quick:
        args.functions, args.days = 80, 3.0
    configure("console", "error")
    scores = {}
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rules = Path(args.rules) if args.rules else applied_rules(Path(tmp))
        sim = simulate(
            [rules],
            functions=args.functions,
            days=args.days,
            seed=args.seed,
            window_s=args.window,
            store_dir=Path(tmp),
        )
        scores["tuner"], seconds["tuner"] = sim.score, time.perf_counter() - t0
        explained = explain(sim, Path(tmp) / "tuner.db", args.explain) if args.explain else []
    for name in PEERS:
        t0 = time.perf_counter()
        provider = run_peer(name, args.functions, args.days, args.seed, args.window)
        scores[name], seconds[name] = provider.ledger.score(), time.perf_counter() - t0
    print(
        f"{args.functions} functions, {args.days:g} days, {args.window:g} s windows, "
        f"seed {args.seed}; cost compared over the last day"
    )
    head = (
        f"{'strategy':18} {'OOMs':>5} {'1 step':>7} {'redeploys':>9} {'p95':>4} "
        f"{'failed inv.':>11} {'cost/opt':>8} {'synthetic':>9} {'probes':>6} {'flapping':>8}"
        f" {'changes':>7}"
        f" {'run s':>6}"
    )
    print(head)
    for name, s in scores.items():
        print(
            f"{name:18} {s.ooms:5d} {s.oom_one_step_fraction:7.1%} "
            f"{s.redeploys_per_oom_mean:9.2f} {s.redeploys_per_oom_p95:4.0f} "
            f"{s.failed_invocations:11d} {s.cost_ratio_to_optimum:8.3f} "
            f"{s.synthetic_invocations:9d} {s.probe_invocations:6d} {s.flapping_changes:8d} "
            f"{s.changes:7d} "
            f"{seconds[name]:6.1f}"
        )
    print("tuner's OOM episodes fixed in one step, by how the work allocates memory:")
    workloads = sim.provider.workloads
    patterns: dict[str, list[bool]] = {}
    for i, redeploys, fixed in sim.provider.ledger.episodes():
        w = workloads[i]
        pattern = "one buffer" if w.chunk == 1.0 else f"in parts of {w.chunk:.0%}"
        key = "leak" if w.kind == "leak" else f"{w.kind}, {pattern}"
        patterns.setdefault(key, []).append(fixed and redeploys == 1)
    for key, ones in sorted(patterns.items()):
        print(f"  {key:28} {sum(ones):4d} of {len(ones):4d}")
    if explained:
        print(
            f"tuner's {args.explain} functions costing most over their optimum "
            "(points: their excess as a share of the fleet's optimum cost):"
        )
        print("\n".join(explained))
    if args.json_file:
        out = {
            "functions": args.functions,
            "days": args.days,
            "seed": args.seed,
            "strategies": {
                name: {**{f: getattr(s, f) for f in FIELDS}, "details": s.as_json()}
                for name, s in scores.items()
            },
        }
        Path(args.json_file).write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
