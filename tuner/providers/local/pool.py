"""The warm workers of one function: reused while their configuration is live."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tuner.providers.local.executions import LimitFactory, WorkerSpec
from tuner.providers.local.sandboxing import Sandbox
from tuner.providers.local.worker_processes import WorkerProcess, WorkerStartError


class WorkerPool:
    """The workers of one function: warm ones reused, at most ``max_workers`` at once.

    A new configuration bumps the generation: idle workers stop at once, busy ones stop
    when their invocation ends (drained), and new invocations get new workers.
    """

    def __init__(
        self,
        spec: WorkerSpec,
        max_workers: int,
        limits: LimitFactory | None,
        sandbox: Sandbox,
    ) -> None:
        self._spec = spec
        self._sandbox = sandbox
        self._generation = 0
        self._idle: list[WorkerProcess] = []
        self._busy: set[WorkerProcess] = set()
        self._max_workers = max_workers
        self._slots = threading.BoundedSemaphore(max_workers)
        self._lock = threading.Lock()
        self._limits = limits
        self._closed = False

    @property
    def spec(self) -> WorkerSpec:
        """The configuration new workers start with."""
        return self._spec

    def configure(self, spec: WorkerSpec) -> None:
        """Use a new configuration for every invocation from now on."""
        with self._lock:
            self._spec = spec
            self._generation += 1
            stale, self._idle = self._idle, []
        for process in stale:
            process.stop()

    @contextmanager
    def worker(self, wait_until: float | None = None) -> Iterator[tuple[WorkerProcess, bool]]:
        """A worker for one invocation and whether it is a cold start.

        With ``wait_until`` (``time.monotonic()``), a call that finds every worker busy
        until then raises WorkerStartError instead of waiting on.
        """
        timeout = None if wait_until is None else max(0.0, wait_until - time.monotonic())
        if not self._slots.acquire(timeout=timeout):
            raise WorkerStartError(
                f"{self._spec.function}: all {self._max_workers} workers stayed busy"
                " until the caller's deadline"
            )
        try:
            with self._lock:
                if self._closed:
                    raise WorkerStartError(f"{self._spec.function}: the host is shutting down")
                process = self._idle.pop() if self._idle else None
                spec, generation = self._spec, self._generation
            cold = process is None
            if process is None:
                limit = self._limits(spec) if self._limits is not None else None
                process = WorkerProcess(spec, generation, limit, self._sandbox)
            with self._lock:
                self._busy.add(process)
            try:
                yield process, cold
            finally:
                self._release(process)
        finally:
            self._slots.release()

    def _release(self, process: WorkerProcess) -> None:
        with self._lock:
            self._busy.discard(process)
            if (
                process.reusable
                and process.alive
                and process.generation == self._generation
                and not self._closed
            ):
                self._idle.append(process)
                return
        process.stop()

    def idle_pids(self) -> list[int]:
        """Process ids of the warm workers waiting for an invocation."""
        with self._lock:
            return [process.pid for process in self._idle]

    def close(self) -> None:
        """Stop every worker, idle or busy; no new worker starts afterwards."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy)
        for process in idle:
            process.stop()
        for process in busy:
            process.kill()  # the invoking thread sees the pipe close and stops it
