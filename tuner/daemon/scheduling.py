"""Scheduling: run the daemon's cycles on an interval until it is told to stop.

APScheduler's background scheduler runs one cycle at a time (a late cycle is coalesced,
never doubled); SIGTERM and SIGINT finish the cycle under way, SIGHUP reloads the rules.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tuner.daemon.loop import Daemon
from tuner.daemon.reports import CycleReport


def run_forever(
    daemon: Daemon,
    interval_s: float,
    *,
    duration_s: float | None = None,
    on_cycle: Callable[[CycleReport], None] | None = None,
    before_cycle: Callable[[], object] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run cycles every ``interval_s`` until SIGTERM/SIGINT, ``stop`` or ``duration_s`` passes.

    The cycle under way always finishes; SIGHUP calls ``before_cycle`` (rule reload) at once.
    """
    from apscheduler.schedulers.background import BackgroundScheduler

    stop = stop or threading.Event()

    def job() -> None:
        if stop.is_set():
            return
        if before_cycle is not None:
            before_cycle()
        report = daemon.run_cycle()
        if on_cycle is not None:
            on_cycle(report)

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
        if before_cycle is not None:
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: before_cycle())
    scheduler = BackgroundScheduler()
    first = datetime.now(UTC)  # the first cycle at once
    scheduler.add_job(
        job, "interval", seconds=interval_s, max_instances=1, coalesce=True, next_run_time=first
    )
    deadline = None if duration_s is None else time.monotonic() + duration_s
    scheduler.start()
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.2)
    finally:
        stop.set()
        scheduler.shutdown(wait=True)  # finish the cycle under way
        for sig, handler in previous.items():
            signal.signal(sig, handler)
