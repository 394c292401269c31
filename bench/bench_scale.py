"""Benchmark: full cycles of the real loop on a simulated fleet of 1,000 to 100,000 functions.

Each cycle observes, evaluates, plans, guards, records in the SQLite store and notifies,
as in production; only the provider is simulated.  Two fleets per size: as drawn (a
quarter of the functions running out of memory, most held back by the guard's caps
cycle after cycle: each is one record, counted, not written again) and settled (every
function at its optimum + 15%).
For each size and fleet, in a fresh process:
CPU per cycle (the simulator's own observe time is measured apart and left out, except
the cyclic collector's runs during it, which walk tuner's objects too and count as
tuner's), peak
RSS, and where the time goes (cProfile of one cycle, by part).  Then a simulated week at
the smallest size: memory per tracked function at the end of each day.

Run: ``python bench/bench_scale.py [--quick] [--json FILE]``.
Targets: <= 250 ms CPU per cycle at 10,000 functions, <= 2.5 s at 100,000, <= 50 KB
per tracked function, flat over the week.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
WINDOW_S = 900.0
PARTS = {
    "tuner/store/audit.py": "store",
    "tuner/notify/": "notifier",
    "tuner/engine/": "rules (facts, conditions)",
    "tuner/daemon/loop.py": "loop",
    "tuner/decisions/guard.py": "guard",
    "tuner/decisions/planning.py": "planning",
    "tuner/engine/actions.py": "actions",
    "tuner/engine/sizing.py": "actions",
    "tuner/decisions/verifying.py": "verifying",
}


def _daemon(functions: int, tmp: Path, settled: bool = False) -> tuple[Any, Any, Any]:
    from tuner.daemon.loop import Daemon, DaemonSettings
    from tuner.engine import load_rules
    from tuner.notify import build_notifier
    from tuner.providers.sim import Settings, SimProvider, VirtualClock, build
    from tuner.store.audit import SqliteStore

    clock = VirtualClock()
    provider = build(Settings(functions=functions, seed=7), clock=clock)
    if settled:  # every function already at its optimum + 15%: nothing to fix
        fleet = [replace(w, memory_mb=int(w.optimum_mb() * 1.15)) for w in provider.workloads]
        provider = SimProvider(fleet, clock, seed=7)
    notifier = build_notifier({"channels": {}}, tmp / "outbox.db", clock, stream=io.StringIO())
    daemon = Daemon(
        providers=[provider],
        rules=load_rules([ROOT / "rules"]),
        store=SqliteStore(tmp / "tuner.db"),
        notifier=notifier,
        clock=clock,
        settings=DaemonSettings(window_s=WINDOW_S),
    )
    return daemon, clock, provider


def _own_part(filename: str) -> str | None:
    for prefix, part in PARTS.items():
        if prefix in filename:
            return part
    return None


def _parts(stats: dict[Any, Any]) -> dict[str, float]:
    """Own time by part of tuner; library time (sqlite, json, ...) goes to the caller's part."""
    memo: dict[Any, str] = {}

    def part(func: Any, depth: int = 0) -> str:
        if func in memo:
            return memo[func]
        found = _own_part(func[0])
        if found is None:
            callers = stats[func][4] if func in stats else {}
            if callers and depth < 20:
                top = max(callers, key=lambda c: callers[c][3])
                found = part(top, depth + 1)
            else:
                found = "other"
        memo[func] = found
        return found

    by_part: dict[str, float] = defaultdict(float)
    for func, row in stats.items():
        by_part[part(func)] += row[2]  # own time
    return by_part


class _CollectorTime:
    """CPU time of the cyclic collector's runs, wherever they ran."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started

    def stop(self) -> None:
        gc.callbacks.remove(self._callback)


def one_size(functions: int, cycles: int, settled: bool) -> dict[str, Any]:
    """Run ``cycles`` measured cycles (after two warm-up cycles) at one fleet size."""
    from tuner.daemon.logs import configure

    configure("console", "error")
    with tempfile.TemporaryDirectory() as tmp:
        daemon, clock, provider = _daemon(functions, Path(tmp), settled)
        for _ in range(2):  # the first cycles write the initial OOM fixes
            clock.advance(WINDOW_S)
            daemon.run_cycle()
        tuner_cpu, sim_cpu, between = [], [], []
        collector = _CollectorTime()
        for i in range(cycles + 1):
            clock.advance(WINDOW_S)
            t0, gc0 = time.process_time(), collector.seconds
            provider.observe(provider.targets(), clock.now() - WINDOW_S, clock.now())
            t1 = time.process_time()  # the cycle's own observe is answered from memory
            # collections that ran meanwhile walked tuner's objects too: counted as tuner's
            collected = collector.seconds - gc0
            t0 += collected
            if i == cycles:  # the last one under the profiler
                profile = cProfile.Profile()
                profile.enable()
                daemon.run_cycle()
                profile.disable()
            else:
                daemon.run_cycle()
                sim_cpu.append(t1 - t0)
                tuner_cpu.append(time.process_time() - t1 + collected)
                between.append(collected)
        collector.stop()
        by_part = _parts(pstats.Stats(profile).stats)  # type: ignore[attr-defined]
        total = sum(by_part.values()) or 1.0
        return {
            "functions": functions,
            "fleet": "settled" if settled else "as drawn",
            "cycles": cycles,
            "tuner_cpu_ms_per_cycle": round(1000 * sum(tuner_cpu) / cycles, 1),
            "simulator_cpu_ms_per_cycle": round(1000 * sum(sim_cpu) / cycles, 1),
            "collector_between_cycles_ms_per_cycle": round(1000 * sum(between) / cycles, 1),
            # the simulator's work is the same in every run: this ratio holds on a busy machine
            "tuner_per_simulator": round(sum(tuner_cpu) / (sum(sim_cpu) or 1.0), 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "profile_share": {k: round(v / total, 3) for k, v in sorted(by_part.items())},
        }


def week(functions: int, days: int) -> dict[str, Any]:
    """Memory per tracked function at the end of each simulated day."""
    from tuner.daemon.logs import configure

    configure("console", "error")
    process = psutil.Process()
    baseline = process.memory_info().rss
    per_day = []
    with tempfile.TemporaryDirectory() as tmp:
        daemon, clock, _ = _daemon(functions, Path(tmp))
        for _ in range(days):
            for _ in range(int(86_400 / WINDOW_S)):
                clock.advance(WINDOW_S)
                daemon.run_cycle()
            rss = process.memory_info().rss - baseline
            store_bytes = sum(f.stat().st_size for f in Path(tmp).iterdir())
            per_day.append(
                {
                    "rss_kb_per_function": round(rss / functions / 1024, 2),
                    "files_kb_per_function": round(store_bytes / functions / 1024, 2),
                }
            )
    return {"functions": functions, "days": days, "per_day": per_day}


def _child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    """Measure each size in its own process and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 functions only, two days of 200")
    ap.add_argument("--json", dest="json_file")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--settled", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--week", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--cycles", type=int, default=5, help=argparse.SUPPRESS)
    ap.add_argument("--days", type=int, default=7, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.cycles, args.settled)))
        return 0
    if args.week:
        print(json.dumps(week(args.week, args.days)))
        return 0
    sizes = [(1_000, 5)] if args.quick else [(1_000, 5), (10_000, 5), (100_000, 3)]
    results = []
    print(
        f"{'functions':>10} {'fleet':>9} {'tuner CPU/cycle':>16} {'sim CPU/cycle':>14} "
        f"{'tuner/sim':>9} {'peak RSS':>9}  where tuner's time goes"
    )
    for functions, cycles in sizes:
        for settled in (False, True):
            flags = ["--settled"] if settled else []
            r = _child(["--one", str(functions), "--cycles", str(cycles), *flags])
            results.append(r)
            shares = ", ".join(
                f"{k} {v:.0%}"
                for k, v in sorted(r["profile_share"].items(), key=lambda kv: -kv[1])
                if v >= 0.02
            )
            print(
                f"{functions:10d} {r['fleet']:>9} {r['tuner_cpu_ms_per_cycle']:13.1f} ms "
                f"{r['simulator_cpu_ms_per_cycle']:11.1f} ms {r['tuner_per_simulator']:9.2f} "
                f"{r['peak_rss_mb']:6.0f} MB  {shares}"
            )
    days, functions = (2, 200) if args.quick else (7, 1000)
    w = _child(["--week", str(functions), "--days", str(days)])
    print(
        f"memory per tracked function over {days} simulated days ({functions} functions, "
        f"{int(86_400 / WINDOW_S)} cycles a day):"
    )
    for day, d in enumerate(w["per_day"], 1):
        print(
            f"  day {day}: RSS {d['rss_kb_per_function']:6.2f} KB, "
            f"store and outbox files {d['files_kb_per_function']:6.2f} KB"
        )
    if args.json_file:
        Path(args.json_file).write_text(
            json.dumps({"sizes": results, "week": w}, indent=2), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
