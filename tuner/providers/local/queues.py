"""Event source queues: records wait here and are delivered ``batch_size`` per invocation."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class EventSourceQueue:
    """A function's queue, polled like Lambda polls SQS.

    The poller waits until ``batch_size`` records are waiting, or until the oldest waited
    ``batch_window_s``, then hands up to ``batch_size`` records to one invocation.  At most
    ``max_in_flight`` batches run at once; while they all run, records keep queueing, so a
    backlog is delivered in full batches.
    """

    def __init__(
        self,
        name: str,
        batch_size: Callable[[], int],
        batch_window_s: float,
        deliver: Callable[[list[Any]], object],
        max_in_flight: int,
        max_length: int = 100_000,
    ) -> None:
        self.name = name
        self._batch_size = batch_size
        self._batch_window_s = batch_window_s
        self._deliver = deliver
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._max_length = max_length
        self._records: deque[tuple[float, Any]] = deque()
        self._changed = threading.Condition()
        self._stopped = False
        self._poller = threading.Thread(target=self._poll, name=f"queue-{name}", daemon=True)
        self._batches: list[threading.Thread] = []

    def start(self) -> None:
        """Start polling."""
        self._poller.start()

    def put(self, records: list[Any]) -> int:
        """Add records; returns how many were accepted (the rest exceed the queue's length)."""
        with self._changed:
            room = max(0, self._max_length - len(self._records))
            now = time.monotonic()
            self._records.extend((now, record) for record in records[:room])
            self._changed.notify_all()
        return min(room, len(records))

    def __len__(self) -> int:
        with self._changed:
            return len(self._records)

    def stop(self) -> None:
        """Stop polling and wait for running batches; records still queued are dropped."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        if self._poller.is_alive():
            self._poller.join()
        for batch in list(self._batches):
            batch.join()

    def _poll(self) -> None:
        while True:
            self._slots.acquire()
            batch = self._next_batch()
            if batch is None:
                return
            runner = threading.Thread(
                target=self._run, args=(batch,), name=f"batch-{self.name}", daemon=True
            )
            self._batches = [b for b in self._batches if b.is_alive()] + [runner]
            runner.start()

    def _next_batch(self) -> list[Any] | None:
        with self._changed:
            while not self._records and not self._stopped:
                self._changed.wait()
            while not self._stopped:
                size = self._batch_size()
                due = self._records[0][0] + self._batch_window_s
                remaining = due - time.monotonic()
                if len(self._records) >= size or remaining <= 0:
                    count = min(size, len(self._records))
                    return [self._records.popleft()[1] for _ in range(count)]
                self._changed.wait(remaining)
            return None

    def _run(self, batch: list[Any]) -> None:
        try:
            self._deliver(batch)
        except Exception:
            log.exception("batch delivery failed", function=self.name, records=len(batch))
        finally:
            self._slots.release()
