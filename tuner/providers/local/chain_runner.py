"""Runs the links that wait in the host's chain store, a few of each function at a time.

One thread polls the store (and wakes at once when a link is handed over); each link due
runs in a thread of its own as an invocation of its function.  What follows a link (the
next one waits, the chain is done, or it failed) is settled by the host when that
invocation ends, not here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from tuner.domain.ports import Clock
from tuner.providers.local.chain_store import ChainStore, LinkTask

log = structlog.get_logger(__name__)

POLL_S = 0.5
"""How often the store is read when nothing wakes the runner (retries come due)."""


class ChainRunner:
    """Takes waiting links from the store and delivers each to the host."""

    def __init__(
        self,
        store: ChainStore,
        clock: Clock,
        deliver: Callable[[LinkTask], object],
        in_flight: int,
    ) -> None:
        self._store = store
        self._clock = clock
        self._deliver = deliver
        self._in_flight = max(1, in_flight)
        self._functions: list[str] = []
        self._running: dict[str, int] = {}
        self._threads: set[threading.Thread] = set()
        self._wake = threading.Condition()
        self._stopped = False
        self._poller: threading.Thread | None = None

    def start(self, functions: list[str]) -> None:
        """Put back the links a stopped or killed host left running, then start polling."""
        recovered = self._store.recover()
        if recovered:
            log.info("chains resumed", links=recovered)
        self._functions = list(functions)
        self._poller = threading.Thread(target=self._poll, name="chains", daemon=True)
        self._poller.start()

    def wake(self) -> None:
        """A link was handed over: look at once."""
        with self._wake:
            self._wake.notify_all()

    def stop(self, wait_s: float = 5.0) -> None:
        """Take no more links; wait a while for the links running (the host kills them)."""
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
            threads = list(self._threads)
        if self._poller is not None:
            self._poller.join(wait_s)
        for thread in threads:
            thread.join(wait_s)

    def _poll(self) -> None:
        while True:
            with self._wake:
                if self._stopped:
                    return
                room = {
                    name: self._in_flight - self._running.get(name, 0) for name in self._functions
                }
            for task in self._store.take(self._clock.now(), room):
                self._launch(task)
            with self._wake:
                if self._stopped:
                    return
                self._wake.wait(POLL_S)

    def _launch(self, task: LinkTask) -> None:
        thread = threading.Thread(
            target=self._run, args=(task,), name=f"link-{task.function}", daemon=True
        )
        with self._wake:
            self._running[task.function] = self._running.get(task.function, 0) + 1
            self._threads.add(thread)
        thread.start()

    def _run(self, task: LinkTask) -> None:
        try:
            self._deliver(task)
        except Exception:
            log.exception("a link could not be run", chain=task.ref.chain, link=task.ref.link)
        finally:
            with self._wake:
                self._running[task.function] -= 1
                self._threads.discard(threading.current_thread())
                self._wake.notify_all()
