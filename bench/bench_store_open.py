"""Benchmark of opening the store: the checks a daemon runs before it uses the store.

Opening checks the file's header, its schema version and every page (SQLite's
``quick_check``), then claims the store with a lock.  Target: under 2 s for a 100 MB
store.  Run: ``python bench/bench_store_open.py [--quick] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from tuner.store.audit import SqliteStore


def fill(path: Path, rows: int) -> float:
    """A store holding ``rows`` kilobyte values; its size in MB."""
    store = SqliteStore(path)
    with store._tx() as db:
        db.executemany(
            "INSERT OR REPLACE INTO state VALUES (?, ?)",
            ((f"key-{i}", "x" * 1000) for i in range(rows)),
        )
    store.close()
    return os.path.getsize(path) / 1e6


def open_time(path: Path, repeats: int = 3) -> float:
    """The best of ``repeats`` checked, claimed opens, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        SqliteStore(path, hold=True).close()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10 MB store instead of 100 MB")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    rows = 10_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tuner.db"
        size_mb = fill(path, rows)
        seconds = open_time(path)
    print(f"store of {size_mb:.0f} MB checked and claimed in {seconds:.3f} s  (target < 2 s)")
    if args.json:
        figures = {"store_mb": round(size_mb, 1), "open_s": round(seconds, 3)}
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
