"""Worker processes on the host side: start, invoke with a deadline, kill, reuse warm ones."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from tuner.providers.local import worker as worker_script

log = structlog.get_logger(__name__)

_WORKER_PATH = Path(worker_script.__file__)
_STARTUP_TIMEOUT_S = 15.0


class SharedCache(Protocol):
    """The host's cache of one function, as a worker's ``cache_get``/``cache_set`` reach it."""

    def get(self, key: str) -> Any:
        """The cached value, or None."""
        ...

    def set(self, key: str, value: Any) -> None:
        """Cache a value."""
        ...


class MemoryLimit(Protocol):
    """An extra, kernel-enforced memory limit for one worker process (a cgroup)."""

    def add(self, pid: int) -> None:
        """Put the process under the limit."""
        ...

    def exceeded(self) -> bool:
        """True when the kernel hit the limit (the process was killed for memory)."""
        ...

    def remove(self) -> None:
        """Release the limit after the process ended."""
        ...


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a worker is started with: one function at one configuration."""

    function: str
    directory: Path
    memory_mb: int
    timeout_s: float
    cache_ttl_s: int
    environment: Mapping[str, str]
    dependencies: Mapping[str, str]
    """Dependency name -> base URL."""
    log_path: Path
    revision: int = 0
    """The deployment these workers run, recorded with every invocation."""


@dataclass(frozen=True, slots=True)
class DependencyCall:
    """One call from a handler to a named dependency."""

    name: str
    time: float
    latency_ms: float
    error: str


@dataclass(frozen=True, slots=True)
class InvokeCall:
    """One call from a handler to another hosted function (``context.invoke``)."""

    name: str
    time: float
    latency_ms: float
    outcome: str
    error: str
    span_id: str = ""


Invoker = Callable[[str, Any], tuple[InvokeCall, Any]]
"""Runs a nested invocation for a worker: how it went, and its result."""


@dataclass(slots=True)
class Execution:
    """What one invocation did, as the host saw it."""

    outcome: str
    duration_ms: float
    result: Any = None
    error: str = ""
    peak_memory_mb: float | None = None
    dependency_calls: list[DependencyCall] = field(default_factory=list)
    cache_hits: int = 0
    cache_misses: int = 0
    invoke_calls: list[InvokeCall] = field(default_factory=list)


class WorkerStartError(Exception):
    """The worker process did not come up (bad handler, import error, crash)."""


class _LineReader:
    """Reads newline-terminated messages from a pipe with a deadline."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""

    def read_line(self, deadline: float) -> bytes | None:
        """The next line, None when the deadline passed; EOFError when the pipe closed."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self._fd, 65536)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


class WorkerProcess:
    """One running worker process of one function at one configuration."""

    def __init__(self, spec: WorkerSpec, generation: int, limit: MemoryLimit | None) -> None:
        self.spec = spec
        self.generation = generation
        self.init_ms = 0.0
        self._limit = limit
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "MALLOC_ARENA_MAX": "2",  # keeps thread arenas from eating the address-space cap
            **spec.environment,
        }
        started = time.monotonic()
        with spec.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                [sys.executable, "-I", str(_WORKER_PATH)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                env=environment,
                cwd=spec.directory,
            )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._stdin = self._process.stdin
        self._reader = _LineReader(self._process.stdout.fileno())
        if limit is not None:
            limit.add(self._process.pid)
        self._start(started)

    @property
    def pid(self) -> int:
        """The process id."""
        return self._process.pid

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self._process.poll() is None

    def _start(self, started: float) -> None:
        self._send(
            {
                "type": "init",
                "function": self.spec.function,
                "directory": str(self.spec.directory),
                "memory_mb": self.spec.memory_mb,
                "timeout_s": self.spec.timeout_s,
                "cache_ttl_s": self.spec.cache_ttl_s,
                "dependencies": dict(self.spec.dependencies),
            }
        )
        try:
            line = self._reader.read_line(time.monotonic() + _STARTUP_TIMEOUT_S)
        except EOFError:
            line = None
        if line is None:
            self.stop()
            raise WorkerStartError(
                f"worker for {self.spec.function} did not start; see {self.spec.log_path}"
            )
        self.init_ms = (time.monotonic() - started) * 1000

    def invoke(
        self,
        event: Any,
        cache: SharedCache,
        *,
        trace: Mapping[str, Any] | None = None,
        invoker: Invoker | None = None,
    ) -> Execution:
        """Run one invocation; kill the worker when it exceeds the timeout.

        ``trace`` holds the tracer's options when the invocation is traced; ``invoker``
        runs the handler's ``context.invoke`` calls (without it they fail).
        """
        started = time.monotonic()
        deadline = started + self.spec.timeout_s
        execution = Execution(outcome="", duration_ms=0.0)
        request: dict[str, Any] = {"type": "invoke", "event": event}
        if trace:
            request["trace"] = dict(trace)
        try:
            self._send(request)
            while not execution.outcome:
                line = self._reader.read_line(deadline)
                if line is None:
                    self._timed_out(execution)
                else:
                    self._handle(json.loads(line), execution, cache, invoker)
            execution.duration_ms = (time.monotonic() - started) * 1000
        except (EOFError, BrokenPipeError):
            self._died(execution)
            execution.duration_ms = (time.monotonic() - started) * 1000
        if execution.outcome == "timeout":
            execution.duration_ms = self.spec.timeout_s * 1000
        return execution

    def _handle(
        self,
        message: dict[str, Any],
        execution: Execution,
        cache: SharedCache,
        invoker: Invoker | None = None,
    ) -> None:
        kind = message["type"]
        if kind == "invoke_call":
            self._nested(message, execution, invoker)
            return
        if kind == "dependency_call":
            execution.dependency_calls.append(
                DependencyCall(
                    message["name"], time.time(), message["latency_ms"], message["error"]
                )
            )
        elif kind == "cache_get":
            value = cache.get(message["key"])
            if value is None:
                execution.cache_misses += 1
            else:
                execution.cache_hits += 1
            self._send({"type": "cache_value", "value": value})
        elif kind == "cache_set":
            cache.set(message["key"], message["value"])
        elif kind == "result":
            execution.outcome = message["outcome"]
            execution.result = message.get("result")
            execution.error = message.get("error", "")
            execution.peak_memory_mb = message.get("peak_mb")
            if execution.outcome == "oom":
                execution.peak_memory_mb = float(self.spec.memory_mb)
                self.stop()  # a worker that ran out of memory is not reused

    def _nested(
        self,
        message: dict[str, Any],
        execution: Execution,
        invoker: Invoker | None,
    ) -> None:
        if invoker is None:
            call, result = InvokeCall(message["name"], time.time(), 0.0, "error", "no host"), None
        else:
            call, result = invoker(str(message["name"]), message.get("event"))
        execution.invoke_calls.append(call)
        self._send(
            {"type": "invoke_result", "outcome": call.outcome, "result": result, "error": call.error}
        )

    def _timed_out(self, execution: Execution) -> None:
        execution.peak_memory_mb = self.peak_memory_mb()
        self.stop()
        execution.outcome = "timeout"
        execution.error = f"timed out after {self.spec.timeout_s:g} s"

    def _died(self, execution: Execution) -> None:
        code = self._process.wait()
        if self._limit is not None and self._limit.exceeded():
            execution.outcome = "oom"
            execution.error = "killed at its memory limit"
            execution.peak_memory_mb = float(self.spec.memory_mb)
        else:
            execution.outcome = "error"
            execution.error = f"worker exited with code {code}"
        self.stop()

    def peak_memory_mb(self) -> float | None:
        """The worker's peak RSS since the current invocation began, read from /proc."""
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def kill(self) -> None:
        """Kill the process without waiting; the thread using it sees the pipe close."""
        if self._process.poll() is None:
            self._process.kill()

    def stop(self) -> None:
        """Kill the process (if it still runs) and release its resources."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()
        if self._limit is not None:
            self._limit.remove()
            self._limit = None

    def _send(self, message: dict[str, Any]) -> None:
        self._stdin.write(json.dumps(message).encode() + b"\n")
        self._stdin.flush()


class WorkerPool:
    """The workers of one function: warm ones reused, at most ``max_workers`` at once.

    A new configuration bumps the generation: idle workers stop at once, busy ones stop
    when their invocation ends (drained), and new invocations get new workers.
    """

    def __init__(self, spec: WorkerSpec, max_workers: int, limits: LimitFactory | None) -> None:
        self._spec = spec
        self._generation = 0
        self._idle: list[WorkerProcess] = []
        self._busy: set[WorkerProcess] = set()
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
    def worker(self) -> Iterator[tuple[WorkerProcess, bool]]:
        """A worker for one invocation and whether it is a cold start."""
        with self._slots:
            with self._lock:
                if self._closed:
                    raise WorkerStartError(f"{self._spec.function}: the host is shutting down")
                process = self._idle.pop() if self._idle else None
                spec, generation = self._spec, self._generation
            cold = process is None
            if process is None:
                limit = self._limits(spec) if self._limits is not None else None
                process = WorkerProcess(spec, generation, limit)
            with self._lock:
                self._busy.add(process)
            try:
                yield process, cold
            finally:
                self._release(process)

    def _release(self, process: WorkerProcess) -> None:
        with self._lock:
            self._busy.discard(process)
            if process.alive and process.generation == self._generation and not self._closed:
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


class LimitFactory(Protocol):
    """Makes a kernel memory limit for a new worker of a given configuration."""

    def __call__(self, spec: WorkerSpec) -> MemoryLimit | None:
        """A limit for a worker started with ``spec``, or None when unavailable."""
        ...
