"""Benchmark: tuner against the strategies people use instead, on the same simulated fleets.

Every strategy runs on its own copy of one seeded fleet (the ``sim`` provider), with the
same traffic: tuner through its real loop, store and notifier with the bundled rules
(right-sizing applied rather than recommended, as every peer applies its own), and the
models of VPA, Compute Optimizer and Power Tuning in ``bench/peers.py``.  Each is scored
against the functions' true optimum, on one fleet or on many (``--seeds 1-20``: per
strategy, the mean and the worst fleet of each figure).

Run: ``python bench/bench_tuning.py [--quick] [--functions N] [--days D] [--seed S | --seeds
A-B] [--held-out A-B] [--jobs J] [--strategies tuner,vpa] [--early-gap S] [--json FILE]
[--explain N]``.
``--explain N`` lists tuner's N functions whose settled cost is furthest over their
optimum, with the decision that sized each (one seed).  ``--held-out`` names the seeds
reported apart, as fleets the rules were not fitted to.
Targets for tuner: >= 95% of OOMs fixed in one step and cost within 5% of the optimum on
the worst fleet, the lowest cost per successful invocation and the fewest failed
invocations of all strategies on every fleet, 0 synthetic invocations, 0 flapping, and
the CPU-bound family within 5% of its optimum.

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
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet_scores import family_summary, figures, summary, targets  # noqa: E402
from peers import PEERS, run_peer  # noqa: E402

from tuner.daemon.logs import configure  # noqa: E402
from tuner.daemon.simulating import simulate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ("tuner", *PEERS)
SHOWN = (
    ("oom_one_step_fraction", "1 step", "{:.1%}"),
    ("failed_invocations", "failed", "{:,.0f}"),
    ("failed_before_fix", "before fix", "{:,.0f}"),
    ("minutes_to_fix_mean", "min to fix", "{:.1f}"),
    ("cost_ratio_to_optimum", "cost/opt", "{:.3f}"),
    ("cost_per_success_to_optimum", "$/success/opt", "{:.3f}"),
    ("synthetic_invocations", "synthetic", "{:,.0f}"),
    ("flapping_changes", "flapping", "{:,.0f}"),
)


def applied_rules(directory: Path) -> Path:
    """The bundled rules with right-sizing applied instead of recommended."""
    text = (ROOT / "rules" / "default.yaml").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() != "mode: recommend"]
    path = directory / "default.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def seeds_of(text: str) -> list[int]:
    """Seeds from ``1-10,15``: ranges and single seeds, in order."""
    out: list[int] = []
    for item in text.split(","):
        low, _, high = item.strip().partition("-")
        out += list(range(int(low), int(high or low) + 1))
    return out


def run(strategy: str, seed: int, args: argparse.Namespace, explain: int = 0) -> dict[str, Any]:
    """One strategy on one fleet: its figures, and how long it ran."""
    configure("console", "error")
    t0 = time.perf_counter()
    if strategy != "tuner":
        provider = run_peer(strategy, args.functions, args.days, seed, args.window, args.early_gap)
        return {**figures(provider), "seconds": round(time.perf_counter() - t0, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(args.rules) if args.rules else applied_rules(Path(tmp))
        sim = simulate(
            [rules],
            functions=args.functions,
            days=args.days,
            seed=seed,
            window_s=args.window,
            store_dir=Path(tmp),
            early_gap_s=args.early_gap or None,
        )
        out = {
            **figures(sim.provider),
            "early_cycles": sim.early_cycles,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        if explain:
            from explaining import explain as why

            out["explained"] = why(sim, Path(tmp) / "tuner.db", explain)
        return out


def print_seed(seed: int, runs: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    """One fleet in full: every strategy's figures, and tuner's by family."""
    print(
        f"{args.functions} functions, {args.days:g} days, {args.window:g} s windows, "
        f"seed {seed}; cost compared over the last day"
    )
    print(f"{'strategy':18}" + "".join(f" {label:>13}" for _, label, _ in SHOWN) + "  run s")
    for name, r in runs.items():
        cells = "".join(f" {fmt.format(r[key]):>13}" for key, _, fmt in SHOWN)
        print(f"{name:18}{cells} {r['seconds']:6.1f}")
    print("by family: cost / optimum (tuner's episodes fixed in one step, failed invocations)")
    for family in runs["tuner"]["families"]:
        cells = []
        for name, r in runs.items():
            f = r["families"][family]
            cells.append(f"{name} {f['cost_ratio_to_optimum']:.3f}")
        t = runs["tuner"]["families"][family]
        print(
            f"  {family:11} {t['functions']:4d} fns  "
            + ", ".join(cells)
            + f"  ({t['one_step']} of {t['episodes']}, {t['failed_invocations']:,} failed)"
        )
    if "explained" in runs["tuner"]:
        print("tuner's functions costing most over their optimum (points of the fleet's ratio):")
        print("\n".join(runs["tuner"]["explained"]))


def print_group(title: str, by_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per strategy, the mean and the worst seed of each figure; tuner's targets."""
    print(f"{title}: seeds {', '.join(map(str, by_seed))}")
    print(f"{'strategy':18}" + "".join(f" {label:>20}" for _, label, _ in SHOWN))
    out: dict[str, Any] = {}
    names = list(next(iter(by_seed.values())))
    for name in names:
        s = summary([runs[name] for runs in by_seed.values()])
        out[name] = s
        cells = "".join(
            f" {fmt.format(s[k]['mean']) + ' / ' + fmt.format(s[k]['worst']):>20}"
            for k, _, fmt in SHOWN
        )
        print(f"{name:18}{cells}")
    print("  (mean / worst seed)")
    families = family_summary(by_seed)
    print("by family: cost / optimum (mean / worst seed)")
    print(f"{'family':18}" + "".join(f" {name:>20}" for name in names))
    for family, by_name in families.items():
        cells = "".join(
            f" {by_name[n]['mean']:.3f} / {by_name[n]['worst']:.3f}".rjust(21) for n in names
        )
        print(f"{family:18}{cells}")
    out["families"] = families
    if len(names) < len(STRATEGIES):
        return out
    checks = targets(by_seed)
    for target, met, figure in checks:
        print(f"  {'met ' if met else 'MISS'} {target}: {figure}")
    out["targets"] = [{"target": t, "met": m, "figure": f} for t, m, f in checks]
    return out


def print_seeds(by_seed: dict[int, dict[str, dict[str, Any]]]) -> None:
    """One line per fleet: tuner's one step and cost, every strategy's cost per success and failures."""
    names = list(next(iter(by_seed.values())))
    head = f"{'seed':>4} {'1 step':>7} {'cost/opt':>8} {'early':>5} |" + "".join(
        f" {name[:12]:>12}" for name in names
    )
    print(
        "per seed: tuner's figures | cost per successful invocation / optimum (failed invocations)"
    )
    print(head)
    for seed, runs in by_seed.items():
        t = runs["tuner"]
        cells = "".join(
            f" {runs[n]['cost_per_success_to_optimum']:6.3f} ({runs[n]['failed_invocations'] / 1000:,.0f}k)"
            for n in names
        )
        print(
            f"{seed:4d} {t['oom_one_step_fraction']:7.1%} {t['cost_ratio_to_optimum']:8.3f} "
            f"{t['early_cycles']:5d} |{cells}"
        )


def run_all(
    chosen: list[str], seeds: list[int], args: argparse.Namespace
) -> dict[int, dict[str, dict[str, Any]]]:
    """Every chosen strategy on every fleet, in ``args.jobs`` processes: figures by seed."""
    tasks = [(name, seed) for seed in seeds for name in chosen]
    explain = args.explain if len(seeds) == 1 else 0
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = [
                pool.submit(run, n, s, args, explain if n == "tuner" else 0) for n, s in tasks
            ]
            results = [f.result() for f in futures]
    else:
        results = [run(n, s, args, explain if n == "tuner" else 0) for n, s in tasks]
    by_seed: dict[int, dict[str, dict[str, Any]]] = {}
    for (name, seed), result in zip(tasks, results, strict=True):
        by_seed.setdefault(seed, {})[name] = result
    return by_seed


def main() -> int:
    """Run every strategy on every fleet asked for, print the figures and optionally write JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small fleet for a few days (CI)")
    ap.add_argument("--functions", type=int, default=300)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", help="several fleets, e.g. 1-20 (overrides --seed)")
    ap.add_argument("--held-out", default="", help="seeds reported apart, e.g. 11-20")
    ap.add_argument("--jobs", type=int, default=1, help="processes running strategies at once")
    ap.add_argument(
        "--strategies",
        default=",".join(STRATEGIES),
        help="which to run, tuner and any peers (targets are checked only with all of them)",
    )
    ap.add_argument("--window", type=float, default=900.0, help="cycle interval in seconds")
    ap.add_argument(
        "--early-gap",
        type=float,
        default=60.0,
        help="shortest gap of a cycle run early for new OOMs, in seconds (0: never early)",
    )
    ap.add_argument("--rules", help="tuner's rule file or directory (default: the bundled rules)")
    ap.add_argument("--json", dest="json_file")
    ap.add_argument(
        "--report",
        metavar="JSON_FILE",
        help="print the figures of a run saved by --json again, without running",
    )
    ap.add_argument(
        "--explain",
        type=int,
        default=0,
        metavar="N",
        help="list tuner's N functions costing most over their optimum, and why (one seed)",
    )
    args = ap.parse_args()
    if args.quick:
        args.functions, args.days = 80, 3.0
    held_out = set(seeds_of(args.held_out)) if args.held_out else set()
    if args.report:
        saved = json.loads(Path(args.report).read_text(encoding="utf-8"))
        args.functions, args.days = saved["functions"], saved["days"]
        args.window = saved.get("window", args.window)
        by_seed = {int(seed): runs for seed, runs in saved["seeds"].items()}
    else:
        chosen = [n for n in STRATEGIES if n in args.strategies.split(",")]
        if "tuner" not in chosen:
            ap.error("--strategies must name tuner (the others are compared with it)")
        by_seed = run_all(chosen, seeds_of(args.seeds) if args.seeds else [args.seed], args)
    seeds = list(by_seed)
    out: dict[str, Any] = {"functions": args.functions, "days": args.days, "window": args.window}
    if len(seeds) == 1:
        print_seed(seeds[0], by_seed[seeds[0]], args)
    else:
        print(
            f"{args.functions} functions, {args.days:g} days, {args.window:g} s windows; "
            "cost compared over the last day"
        )
        print_seeds(by_seed)
        decided = {s: r for s, r in by_seed.items() if s not in held_out}
        groups = {"all": by_seed}
        if held_out and decided:
            groups = {
                "decided": decided,
                "held out": {s: by_seed[s] for s in seeds if s in held_out},
                "all": by_seed,
            }
        out["summary"] = {title: print_group(title, group) for title, group in groups.items()}
    out["seeds"] = by_seed
    if args.json_file:
        Path(args.json_file).write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
