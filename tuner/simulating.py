"""Dry-run a rule base on a simulated fleet: what tuner would do, what it costs, how far from optimal.

:func:`simulate` runs tuner's real loop (:class:`tuner.loop.Daemon`) with a real store and
notifier against the ``sim`` provider on a virtual clock, cycle after cycle, and scores
the run against each function's true optimum.  ``tuner simulate`` is its command line.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.lifecycle import State
from tuner.model import Decision

DAY_S = 86_400.0
BUNDLED_RULES = Path(__file__).resolve().parents[1] / "rules"


@dataclass
class Simulation:
    """What tuner did on a simulated fleet, and how it scored."""

    functions: int
    days: float
    window_s: float
    cycles: int = 0
    cpu_s: float = 0.0
    decisions: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(rule, action, outcome) -> how many decisions."""
    examples: list[str] = field(default_factory=list)
    score: Any = None
    provider: Any = None
    """The simulated provider, with its fleet and ledger."""

    def as_json(self) -> dict[str, Any]:
        """The simulation as a JSON object."""
        return {
            "functions": self.functions,
            "days": self.days,
            "window_s": self.window_s,
            "cycles": self.cycles,
            "cpu_s": round(self.cpu_s, 3),
            "decisions": [
                {"rule": r, "action": a, "outcome": o, "count": n}
                for (r, a, o), n in sorted(self.decisions.items())
            ],
            "examples": self.examples,
            "score": self.score.as_json() if self.score else None,
        }


def simulate(
    rule_paths: Sequence[str | Path],
    *,
    functions: int = 1000,
    days: float = 7.0,
    seed: int = 0,
    window_s: float = 900.0,
    store_dir: Path | None = None,
    on_cycle: Callable[[int], None] | None = None,
    guard_policy: Any = None,
) -> Simulation:
    """Run the rules on a fresh simulated fleet for ``days`` of virtual time.

    ``guard_policy`` (a :class:`tuner.guard.GuardPolicy`) replaces the default caps.
    """
    from tuner.engine import load_rules
    from tuner.loop import Daemon
    from tuner.notify import build_notifier
    from tuner.providers.sim import Settings, VirtualClock, build
    from tuner.store import SqliteStore

    rules = load_rules(list(rule_paths))
    clock = VirtualClock()
    provider = build(Settings(functions=functions, seed=seed), clock=clock)
    end = days * DAY_S
    provider.ledger.settle_from = max(window_s, end - DAY_S)
    result = Simulation(functions=functions, days=days, window_s=window_s)
    with tempfile.TemporaryDirectory() as tmp:
        base = store_dir or Path(tmp)
        store = SqliteStore(base / "tuner.db")
        notifier = build_notifier({"channels": {}}, base / "outbox.db", clock, stream=io.StringIO())
        daemon = Daemon(providers=[provider], rules=rules, store=store, notifier=notifier,
                        clock=clock, window_s=window_s, guard_policy=guard_policy)  # fmt: skip
        started = time.process_time()
        try:
            while clock.now() + window_s <= end + 1e-6:
                clock.advance(window_s)
                report = daemon.run_cycle()
                result.cycles += 1
                _tally(result, report.decisions + report.verified)
                if on_cycle is not None:
                    on_cycle(result.cycles)
        finally:
            result.cpu_s = time.process_time() - started
            store.close()
    result.score = provider.ledger.score()
    result.provider = provider
    return result


def _tally(result: Simulation, decisions: list[Decision]) -> None:
    for d in decisions:
        result.decisions[(d.rule, d.action, d.state.value)] += 1
        if d.state is State.APPLIED and d.rule == "oom" and len(result.examples) < 5:
            result.examples.append(f"{d.ref.name}: {d.summary}")


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
        f"failed invocations (OOM or timeout): {s.failed_invocations}",
        f"cost over the last day: ${s.cost:,.2f} against ${s.optimum_cost:,.2f} at the optimum"
        f" (x{s.cost_ratio_to_optimum:.3f})",
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


def add_parser(sub: Any) -> None:
    """Register ``tuner simulate`` on the CLI's subparsers."""
    p = sub.add_parser("simulate", help="dry-run a rule base on a simulated fleet")
    p.add_argument("--rules", default=str(BUNDLED_RULES), help="rule file or directory")
    p.add_argument("--functions", type=int, default=1000, help="functions in the fleet")
    p.add_argument("--days", type=float, default=7.0, help="simulated days")
    p.add_argument("--seed", type=int, default=0, help="the fleet and its traffic, reproducibly")
    p.add_argument("--window", type=float, default=900.0, help="cycle interval in seconds")
    p.add_argument("--json", dest="json_file", help="also write the result to this file")
    p.set_defaults(fn=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run ``tuner simulate``."""
    from tuner.logs import configure

    configure("console", "error")
    if args.functions < 1 or args.days <= 0 or args.window <= 0:
        raise SystemExit("tuner simulate: --functions, --days and --window must be positive")
    sim = simulate([args.rules], functions=args.functions, days=args.days, seed=args.seed,
                   window_s=args.window)  # fmt: skip
    for line in report_lines(sim):
        print(line)
    if args.json_file:
        Path(args.json_file).write_text(json.dumps(sim.as_json(), indent=2), encoding="utf-8")
    return 0
