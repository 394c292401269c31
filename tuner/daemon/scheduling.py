"""Scheduling: run the daemon's cycles on an interval, and early when a function starts failing.

APScheduler's background scheduler runs one cycle at a time (a late cycle is coalesced,
never doubled); SIGTERM and SIGINT finish the cycle under way, SIGHUP reloads the rules.
Between regular cycles, a provider that hears of invocations killed for memory as they
happen (:class:`tuner.domain.ports.Urgent`) brings a cycle for those functions forward
(:class:`EarlyCycles`), so that the fix does not wait for the window's end.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from tuner.daemon.loop import Daemon
from tuner.daemon.reports import CycleReport
from tuner.domain.model import FunctionRef
from tuner.domain.ports import Provider, Urgent

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Early:
    """A cycle to run before its time: when, and for which functions."""

    at: float
    functions: frozenset[FunctionRef]


@dataclass
class EarlyCycles:
    """When a cycle runs before its time, for functions that began to fail since the last one.

    A cycle for the functions a provider reports killed for memory runs as soon as it
    hears of them, but never sooner than ``min_gap_s`` after the previous cycle, nor
    within ``min_gap_s`` of the next regular one (that one will see them).  A function
    brings at most one early cycle between two regular cycles, so a function that keeps
    failing while its fix is held back does not bring a cycle every ``min_gap_s``.
    """

    min_gap_s: float = 60.0
    poll_s: float = 1.0
    """How often a running daemon asks the providers for news between regular cycles."""
    last: float = -math.inf
    """When the previous cycle, regular or early, ran."""
    told: set[FunctionRef] = field(default_factory=set)
    """Functions an early cycle has seen since the last regular cycle."""

    def due(self, news: Mapping[FunctionRef, float], next_regular: float) -> Early | None:
        """The early cycle the news calls for before ``next_regular``, or None."""
        fresh = {ref: at for ref, at in news.items() if ref not in self.told}
        if not fresh:
            return None
        at = max(min(fresh.values()), self.last + self.min_gap_s)
        if at > next_regular - self.min_gap_s:
            return None
        return Early(at, frozenset(ref for ref, t in fresh.items() if t <= at))

    def ran(self, at: float, early: Early | None = None) -> None:
        """A cycle ran at ``at``: an early one for ``early.functions``, else a regular one."""
        self.last = at
        if early is None:
            self.told.clear()
        else:
            self.told |= early.functions


def news_since(providers: Sequence[Provider], since: float) -> dict[FunctionRef, float]:
    """Functions killed for memory since ``since``, from every provider that hears it at once."""
    news: dict[FunctionRef, float] = {}
    for provider in providers:
        if not isinstance(provider, Urgent):
            continue
        try:
            news.update(provider.urgent_since(since))
        except Exception as exc:  # noqa: BLE001 - no news is not a failed cycle
            log.warning("no news from provider", provider=provider.name, error=str(exc))
    return news


def run_forever(
    daemon: Daemon,
    interval_s: float,
    *,
    duration_s: float | None = None,
    on_cycle: Callable[[CycleReport], None] | None = None,
    before_cycle: Callable[[], object] | None = None,
    stop: threading.Event | None = None,
    early: EarlyCycles | None = None,
) -> None:
    """Run cycles every ``interval_s`` until SIGTERM/SIGINT, ``stop`` or ``duration_s`` passes.

    The cycle under way always finishes; SIGHUP calls ``before_cycle`` (rule reload) at once.
    With ``early``, the providers are asked for news every ``early.poll_s`` seconds, and a
    cycle for the functions that began to fail runs at once (in this thread).
    """
    from apscheduler.schedulers.background import BackgroundScheduler

    stop = stop or threading.Event()
    turns = threading.Lock()  # the early schedule is read and written from both threads

    def cycle(plan: Early | None = None) -> None:
        if stop.is_set():
            return
        if before_cycle is not None:
            before_cycle()
        report = daemon.run_cycle(only=plan.functions if plan else None)
        if early is not None:
            with turns:
                early.ran(report.started, plan)
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
    job = scheduler.add_job(
        cycle, "interval", seconds=interval_s, max_instances=1, coalesce=True, next_run_time=first
    )
    deadline = None if duration_s is None else time.monotonic() + duration_s
    scheduler.start()
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if early is not None and job.next_run_time is not None:
                with turns:
                    news = (
                        news_since(daemon.providers, early.last)
                        if math.isfinite(early.last)
                        else {}
                    )
                    plan = early.due(news, job.next_run_time.timestamp())
                if plan is not None and plan.at <= daemon.clock.now():
                    cycle(plan)
                    continue
            stop.wait(early.poll_s if early is not None else 0.2)
    finally:
        stop.set()
        scheduler.shutdown(wait=True)  # finish the cycle under way
        for sig, handler in previous.items():
            signal.signal(sig, handler)
