"""Soak benchmark: days of simulated churn on a virtual clock, with the daemon's footprint per day.

Usage: ``python -m bench.bench_soak [DAYS] [--live N] [--retention-days D] [--quick]``
(``--quick``: one short day of 60 cycles, to check that the benchmark runs).  Prints one line per simulated day:
the Python heap traced by tracemalloc, the interpreter's allocated blocks, RSS, the loop's
state (streaks, state keys, open intents), the store's size and the time per cycle.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import structlog

from tests.safety.soak import CYCLES_PER_DAY, Soak


def main() -> None:
    """Run the soak and print its figures."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("days", nargs="?", type=int, default=7)
    args.add_argument("--live", type=int, default=20, help="functions alive at any time")
    args.add_argument("--retention-days", type=float, default=30.0, help="audit store retention")
    args.add_argument("--quick", action="store_true", help="one day of 60 cycles, 5 functions")
    opts = args.parse_args()
    cycles = 60 if opts.quick else CYCLES_PER_DAY
    if opts.quick:
        opts.days, opts.live = 1, 5
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "soak.db"
        soak = Soak(store, live=opts.live)
        soak.daemon.settings = replace(
            soak.daemon.settings, retention_s=opts.retention_days * 86_400.0
        )
        tracemalloc.start()
        print(
            "day  functions  changes  heap_kib  blocks   rss_mib  streaks  state  open  db_kib  ms/cycle"
        )
        try:
            for day in range(1, opts.days + 1):
                started = time.perf_counter()
                soak.run(cycles)
                per_cycle = (time.perf_counter() - started) / cycles * 1000
                s = soak.sample()
                print(
                    f"{day:>3}  {soak.born:>9}  {soak.applied:>7}  {s.heap_bytes // 1024:>8}  "
                    f"{s.blocks:>7}  {s.rss_bytes / 2**20:>7.1f}  {s.streaks:>7}  {s.state_keys:>5}  "
                    f"{s.open_intents:>4}  {store.stat().st_size // 1024:>6}  {per_cycle:>8.1f}",
                    flush=True,
                )
        finally:
            tracemalloc.stop()
            soak.close()


if __name__ == "__main__":
    main()
