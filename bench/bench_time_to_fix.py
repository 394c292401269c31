"""Benchmark: time from the first OOM of a local function to the applied memory change.

Runs the real local host with its demo traffic and the daemon on a short interval, then
reads the first OOM invocation from the host's records and the applied change from the
store.  Target: at most one poll interval plus the apply time.
Run: ``python bench/bench_time_to_fix.py [--interval 5] [--quick]`` (``--quick``: a 2 s
interval, to check that it runs).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from bench.local_loop import local_daemon
from tuner.daemon.logs import configure
from tuner.daemon.scheduling import run_forever
from tuner.providers.local import Settings


def main(interval_s: float = 5.0) -> None:
    """Print first OOM -> applied change, against the interval and the apply time."""
    configure("console", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(state_dir=Path(tmp), http_port=None)
        provider, store, daemon = local_daemon(settings, Path(tmp) / "tuner.db", interval_s)
        stop = threading.Event()
        applied_at: list[float] = []
        apply_seconds: list[float] = []
        original_apply = provider.apply

        def timed_apply(target, changes, **kwargs):  # type: ignore[no-untyped-def]
            t0 = time.time()
            try:
                return original_apply(target, changes, **kwargs)
            finally:
                apply_seconds.append(time.time() - t0)
                applied_at.append(time.time())

        provider.apply = timed_apply  # type: ignore[method-assign]
        provider.start()
        runner = threading.Thread(
            target=run_forever, args=(daemon, interval_s), kwargs={"stop": stop}
        )
        runner.start()
        try:
            deadline = time.time() + 20 * interval_s
            decision = None
            while time.time() < deadline and decision is None:
                time.sleep(0.2)
                decision = next(
                    (d for d in store.decisions() if d.rule == "oom" and d.applied),
                    None,
                )
        finally:
            stop.set()
            runner.join()
            provider.close()
        if decision is None:
            print("no OOM change was applied")
            return
        with sqlite3.connect(Path(tmp) / "local.sqlite") as db:
            (first_oom,) = db.execute(
                "SELECT MIN(end) FROM invocations WHERE outcome = 'oom' AND function = ?",
                (decision.ref.name,),
            ).fetchone()
        store.close()
        elapsed = applied_at[0] - first_oom
        print(f"poll interval: {interval_s:.1f} s; apply time: {apply_seconds[0] * 1000:.0f} ms")
        print(
            f"first OOM -> applied change: {elapsed:.2f} s "
            f"(target <= interval + apply = {interval_s + apply_seconds[0]:.2f} s)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=5.0, help="the poll interval, seconds")
    parser.add_argument("--quick", action="store_true", help="a 2 s interval")
    opts = parser.parse_args()
    main(2.0 if opts.quick else opts.interval)
