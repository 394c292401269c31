"""``tuner simulate``: dry-run a rule base on a simulated fleet and print what tuner would do."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tuner.cli.arguments import count, existing_path, output_file, positive
from tuner.daemon.simulating import BUNDLED_RULES, Simulation, simulate


def report_lines(sim: Simulation) -> list[str]:
    """A human report of a simulation."""
    s = sim.score
    lines = [
        f"simulated {sim.functions} functions for {sim.days:g} days "
        f"({sim.cycles} cycles of {sim.window_s:g} s, {sim.cpu_s:.1f} s CPU)",
        "",
        "what tuner would have done:",
    ]
    for (rule, action, outcome), n in sorted(sim.decisions.items()):
        lines.append(f"  {n:7d}  {rule:16} {action:16} {outcome}")
    if sim.examples:
        lines += ["", "first memory fixes:"] + [f"  {e}" for e in sim.examples]
    lines += [
        "",
        f"OOM episodes: {s.ooms}, fixed {s.oom_fixed}, in one step {s.oom_one_step_fraction:.1%}"
        f" (redeploys per fix: mean {s.redeploys_per_oom_mean:g}, p95 {s.redeploys_per_oom_p95:g})",
        f"failed invocations (OOM or timeout): {s.failed_invocations}; between an OOM and "
        f"its fix: {s.failed_before_fix}, {s.minutes_to_fix_mean:g} minutes on average "
        f"({sim.early_cycles} cycles run early)",
        f"cost over the last day: ${s.cost:,.2f} against ${s.optimum_cost:,.2f} at the optimum"
        f" (x{s.cost_ratio_to_optimum:.3f}); per successful invocation, failures and tries "
        f"again paid: x{s.cost_per_success_to_optimum:.3f}",
        f"memory changes: {s.changes}, of which oscillating: {s.flapping_changes}",
        f"probes (invocations killed for memory, re-run once at a higher limit): "
        f"{s.probe_invocations}, ${s.probe_cost:,.2f} (in the cost above)",
    ]
    recommended = sum(n for (_, _, o), n in sim.decisions.items() if o == "recommended")
    if recommended:
        lines.append(
            f"{recommended} recommendations were not applied (rules in mode recommend): "
            "the cost above is without them"
        )
    return lines


def register(sub: Any) -> None:
    """Register ``tuner simulate`` on the CLI's subparsers."""
    p = sub.add_parser("simulate", help="dry-run a rule base on a simulated fleet")
    p.add_argument(
        "--rules", type=existing_path, default=str(BUNDLED_RULES), help="rule file or directory"
    )
    p.add_argument("--functions", type=count, default=1000, help="functions in the fleet")
    p.add_argument("--days", type=positive, default=7.0, help="simulated days")
    p.add_argument("--seed", type=int, default=0, help="the fleet and its traffic, reproducibly")
    p.add_argument("--window", type=positive, default=900.0, help="cycle interval in seconds")
    p.add_argument(
        "--json", dest="json_file", type=output_file, help="also write the result to this file"
    )
    p.set_defaults(fn=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run ``tuner simulate``."""
    from tuner.daemon.logs import configure

    configure("console", "error")
    sim = simulate(
        [args.rules], functions=args.functions, days=args.days, seed=args.seed, window_s=args.window
    )
    for line in report_lines(sim):
        print(line)
    if args.json_file:
        Path(args.json_file).write_text(json.dumps(sim.as_json(), indent=2), encoding="utf-8")
    return 0
