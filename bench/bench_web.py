"""Benchmark of the daemon's web side at 10,000 functions: pages, API answers, a scrape.

Targets: every dashboard page and API answer in under 300 ms (a page of the fleet, paged
on the server), a ``/metrics`` scrape in under 100 ms.  The fleet is the engine
benchmark's synthetic one; its facts go through the real loop's observer calls into the
live state, and the web server answers over real HTTP on 127.0.0.1.

Run: ``python bench/bench_web.py [--quick] [--functions N] [--json FILE]``; a full run exits 1
when a target is missed, ``--quick`` (few requests, CI's smoke run) only says so.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import tracemalloc
import urllib.request
import uuid
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_engine import fleet  # noqa: E402

from tuner.daemon.live import LiveState  # noqa: E402
from tuner.daemon.reports import CycleReport  # noqa: E402
from tuner.domain.decisions import Decision  # noqa: E402
from tuner.domain.lifecycle import State  # noqa: E402
from tuner.domain.model import Change, Knob, Mode, Severity  # noqa: E402
from tuner.engine import Streaks, build_facts, evaluate, fleet_facts, load_rules  # noqa: E402
from tuner.store.audit import SqliteStore  # noqa: E402
from tuner.web.api import Sources  # noqa: E402
from tuner.web.metrics import Metrics  # noqa: E402
from tuner.web.server import WebServer  # noqa: E402

PAGE_TARGET_MS = 300.0
SCRAPE_TARGET_MS = 100.0


def build_state(n: int, cycles: int, store: SqliteStore) -> tuple[LiveState, Metrics, float]:
    """Feed ``cycles`` cycles of a fleet of ``n`` through the observers; returns the state's size."""
    rules = load_rules([ROOT / "rules" / "default.yaml"])
    targets, windows = fleet(n)
    state, metrics = LiveState(60.0), Metrics()
    streaks = Streaks()
    rng = random.Random(3)
    now = time.time() - 60.0 * cycles
    size = 0.0
    observing = 0.0
    for cycle in range(cycles):
        if cycle == 0:  # the state's size: what the first cycle leaves behind, rings included
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
        ff = fleet_facts(n, windows)
        report = CycleReport(started=now)
        seen = []
        for target, window in zip(targets, windows, strict=True):
            facts = build_facts(target, window, ff)
            seen.append((target, facts, evaluate(rules, target, facts, streaks, now)[0]))
        t = time.process_time()
        for target, facts, findings in seen:
            state.function_observed(target, facts, findings, now)
            metrics.function_observed(target, facts, findings, now)
        if cycle:  # the first cycle allocates the rings, under tracemalloc
            observing += time.process_time() - t
        report.finished = now + 0.5
        t = time.process_time()
        state.cycle_finished(report, rules)
        metrics.cycle_finished(report, rules)
        if cycle:
            observing += time.process_time() - t
        now += 60.0
        if cycle == 0:
            size = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
    decisions = []
    for target in rng.sample(targets, n // 20):  # one in twenty functions was changed
        decisions.append(
            Decision(
                id=uuid.uuid4().hex,
                time=now - 600,
                ref=target.ref,
                rule="oom",
                action="more-memory",
                severity=Severity.CRITICAL,
                mode=Mode.APPLY,
                state=State.IMPROVED,
                change=Change(Knob.MEMORY_MB, target.config.memory_mb, target.config.memory_mb * 2),
                facts=build_facts(target, windows[0], {}),
            )
        )
    store.record_many(decisions)
    state.add_decisions(decisions)
    print(
        f"the loop's observer calls: {observing / (cycles - 1) * 1000:.1f} ms of CPU per cycle of {n} functions"
    )
    return state, metrics, size / 1e6


def timed(url: str, repeat: int) -> tuple[float, float, int]:
    """Median and worst milliseconds of GET ``url`` over ``repeat`` requests, and the size."""
    times, size = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as answer:
            size = len(answer.read())
            assert answer.status == 200, url
        times.append((time.perf_counter() - t) * 1000)
    return median(times), max(times), size


def main() -> int:
    """Run the benchmark and print its figures; a full run exits 1 when a target is missed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer cycles and requests (seconds)")
    p.add_argument("--functions", type=int, default=10_000)
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args()
    n = args.functions
    cycles, repeat = (3, 5) if args.quick else (30, 30)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "tuner.db")
        t = time.perf_counter()
        state, metrics, state_mb = build_state(n, cycles, store)
        print(
            f"{n} functions, {cycles} cycles fed in {time.perf_counter() - t:.1f} s; "
            f"live state {state_mb:.1f} MB ({state_mb * 1e6 / n / 1024:.1f} KB per function)"
        )
        src = Sources(state, store=store, db_path=Path(tmp) / "tuner.db")
        metrics.watch(state, src.fleet, None)
        server = WebServer(src, metrics, "127.0.0.1", 0)
        server.start()
        base = server.url.rstrip("/")
        some = state.functions()[n // 2].key
        changed = next(r.key for r in src.fleet.rows() if r.state == "changed")
        paths = {
            "/ (fleet page)": "/",
            "/api/fleet": "/api/fleet",
            "/api/fleet?q&state (search)": "/api/fleet?q=fn-04&state=healthy",
            "/api/fleet page 100": "/api/fleet?page=100",
            "/functions/<key> (page)": f"/functions/{changed}",
            "/api/functions/<key>": f"/api/functions/{changed}",
            "/rules?function (page)": f"/rules?function={some}",
            "/api/why": f"/api/why?function={some}",
            "/api/rules": "/api/rules",
            "/api/decisions": "/api/decisions?limit=100",
            "/topology (page)": "/topology",
            "/api/topology": "/api/topology",
            "/api/status": "/api/status",
            "/healthz": "/healthz",
        }
        figures: dict[str, Any] = {"functions": n, "cycles": cycles, "state_mb": round(state_mb, 1)}
        missed = []
        try:
            timed(base + "/api/fleet", 1)  # the first answer builds the fleet's rows once per cycle
            for name, path in paths.items():
                med, worst, size = timed(base + path, repeat)
                flag = "" if worst < PAGE_TARGET_MS else "  OVER TARGET"
                if flag:
                    missed.append(name)
                print(
                    f"{name:32} median {med:6.1f} ms  worst {worst:6.1f} ms  {size / 1024:7.1f} KB{flag}"
                )
                figures[name] = {
                    "median_ms": round(med, 2),
                    "worst_ms": round(worst, 2),
                    "kb": round(size / 1024, 1),
                }
            med, worst, size = timed(base + "/metrics", repeat)
            flag = "" if worst < SCRAPE_TARGET_MS else "  OVER TARGET"
            if flag:
                missed.append("/metrics")
            print(
                f"{'/metrics (scrape)':32} median {med:6.1f} ms  worst {worst:6.1f} ms  {size / 1024:7.1f} KB{flag}"
            )
            figures["/metrics"] = {
                "median_ms": round(med, 2),
                "worst_ms": round(worst, 2),
                "kb": round(size / 1024, 1),
            }
        finally:
            server.close()
            store.close()
    print(
        f"targets: pages and API < {PAGE_TARGET_MS:g} ms, scrape < {SCRAPE_TARGET_MS:g} ms: "
        + ("met" if not missed else "MISSED by " + ", ".join(missed))
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if missed and not args.quick else 0  # --quick is CI's smoke run on a shared machine


if __name__ == "__main__":
    sys.exit(main())
