"""The tracer inside a worker: samples the handler's call stack, CPU time and memory.

Standard library only (a worker may run on an interpreter that cannot see tuner's
dependencies).  A sampling thread reads the handler thread's stack every ``interval_s``
and charges the wall and CPU time since the previous sample to that stack; ``tracemalloc``
follows the invocation's allocations.  The profile so far is sent to the host (a ``trace``
message on the worker's protocol pipe, which the host reads as it comes) every ``flush_s``,
so an invocation killed for time or memory still leaves where it was and what it had
reached; :meth:`InvocationTracer.finish` sends the final one.  Nothing is written to disk:
a worker that runs as another user needs no folder of the host's.

The message holds ``{"type": "trace", "complete", "samples", "wall_ms", "cpu_ms", "tree",
"where", "exception", "memory"}``; the tree is nested ``{"function", "file", "line",
"wall_ms", "cpu_ms", "samples", "lines", "children"}`` nodes under a root, left out
(``null``) when the message would pass ``max_bytes``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
import tracemalloc
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

_MB = 1024 * 1024
_PEAK_MIN = 256 * 1024
"""Allocations smaller than this are not worth a snapshot at the peak."""
_BOOKKEEPING_SHARE = 0.02
"""Of the memory limit, the most that following allocations may take (then it stops): traced,
millions of small objects would otherwise need memory and time they do not untraced."""
_SNAPSHOT_COST = 4.0
"""A snapshot's Python objects, as a multiple of tracemalloc's own records (measured: 200 to
220 bytes a trace against 50 to 60): both count against the share while one is taken."""
_OWN_FILES = (__file__, "worker.py", "worker_limits.py", "allocation_sizes.py", "fused_worker.py")
_SAMPLER_STACK = 1024 * 1024
"""The sampling thread's stack: small, so tracing leaves the handler its memory limit."""


if TYPE_CHECKING:
    from tuner.providers.local.allocation_sizes import failed_allocation, function_at, short_path
else:
    if "sibling" not in globals():  # imported from tuner's package, not loaded by a worker
        from tuner.providers.local.worker import sibling
    _sizes = sibling("allocation_sizes")  # a worker gives the modules it loads its loader
    failed_allocation, function_at, short_path = (
        _sizes.failed_allocation,
        _sizes.function_at,
        _sizes.short_path,
    )


def _label(frame: tracemalloc.Frame, root: str) -> str:
    """``function (file:line)`` for an allocation's frame, ``file:line`` outside a function."""
    where = f"{short_path(frame.filename, root)}:{frame.lineno}"
    function = function_at(frame.filename, frame.lineno)
    return f"{function} ({where})" if function else where


class _Node:
    """One frame in the aggregated call tree."""

    __slots__ = ("function", "file", "line", "wall", "cpu", "samples", "lines", "children")

    def __init__(self, function: str, file: str, line: int) -> None:
        self.function = function
        self.file = file
        self.line = line
        self.wall = 0.0
        self.cpu = 0.0
        self.samples = 0
        self.lines: dict[int, int] = {}
        self.children: dict[tuple[str, str, int], _Node] = {}

    def as_json(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "file": self.file,
            "line": self.line,
            "wall_ms": round(self.wall * 1000, 3),
            "cpu_ms": round(self.cpu * 1000, 3),
            "samples": self.samples,
            "lines": {str(k): v for k, v in self.lines.items()},
            "children": [c.as_json() for c in self.children.values()],
        }


class InvocationTracer:
    """Traces one invocation of a handler running on the thread that creates it."""

    def __init__(
        self,
        options: dict[str, Any],
        root: str,
        memory_limit_mb: int,
        entry: Any,
        send: Callable[[str], None],
    ) -> None:
        self._send = send
        """Sends one encoded message (a JSON object) to the host."""
        self.max_bytes = int(options.get("max_bytes", 4 * _MB))
        """The largest message sent; a larger profile is sent without its tree."""
        self.interval_s = float(options.get("interval_ms", 1.0)) / 1000
        self.flush_s = float(options.get("flush_ms", 200.0)) / 1000
        self.max_depth = int(options.get("max_depth", 64))
        self.max_nodes = int(options.get("max_nodes", 5000))
        self.memory = bool(options.get("memory", True))
        self.allocations = self.memory and bool(options.get("allocations", True))
        """Follow allocation sites (tracemalloc): costly while a cold worker imports."""
        self.memory_frames = int(options.get("memory_frames", 4))
        self.root_dir = root
        self._entry = getattr(entry, "__code__", None)
        """The handler's code: samples start at its frame (none are taken outside it)."""
        self.limit_mb = memory_limit_mb
        self.tree = _Node("<invocation>", "", 0)
        self.nodes = 1
        self.where: list[dict[str, Any]] = []
        self.exception: dict[str, Any] | None = None
        self.memory_facts: dict[str, Any] = {}
        self._thread_id = threading.get_ident()
        self._cpu_clock = time.pthread_getcpuclockid(self._thread_id)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sampler: threading.Thread | None = None
        self._started = 0.0
        self._baseline_mb = 0.0
        self._switch = sys.getswitchinterval()
        self._peak_sites: list[dict[str, Any]] | None = None
        """The sites at the largest snapshot so far (kept, not the snapshot: it is large)."""
        self._peak_size = 0
        self._threads = 0

    # ------------------------------------------------------------ lifecycle

    def start(self, baseline_rss_mb: float) -> None:
        """Start sampling (and tracing allocations) from now."""
        self._baseline_mb = baseline_rss_mb
        self._threads = _thread_count()
        if self.allocations:
            tracemalloc.start(self.memory_frames)
        sys.setswitchinterval(min(self._switch, self.interval_s))
        self._started = time.perf_counter()
        self._sampler = threading.Thread(target=self._run, name="tuner-tracer", daemon=True)
        default_stack = threading.stack_size(_SAMPLER_STACK)  # counts against RLIMIT_AS
        try:
            self._sampler.start()
        finally:
            threading.stack_size(default_stack)

    def finish(self, error: BaseException | None, out_of_memory: bool) -> None:
        """Stop sampling, record the exception and memory, and write the final file."""
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
            _wait_for_threads(self._threads)
        sys.setswitchinterval(self._switch)
        if error is not None:
            self.exception = describe_exception(error, self.root_dir)
        if self.memory:
            self.memory_facts = self._memory(error if out_of_memory else None)
        if tracemalloc.is_tracing():
            tracemalloc.stop()
        self._write(complete=True)

    # ------------------------------------------------------------ sampling

    def _run(self) -> None:
        last_wall = time.perf_counter()
        last_cpu = time.clock_gettime(self._cpu_clock)
        next_flush = last_wall + self.flush_s
        while not self._stop.wait(self.interval_s):
            frame = sys._current_frames().get(self._thread_id)
            now = time.perf_counter()
            try:
                cpu = time.clock_gettime(self._cpu_clock)
            except OSError:  # the handler thread ended
                break
            if frame is not None:
                with self._lock:
                    self._add(frame, now - last_wall, cpu - last_cpu)
            if self.allocations and tracemalloc.is_tracing():
                self._snapshot_at_peak()
            last_wall, last_cpu = now, cpu
            if now >= next_flush:
                next_flush = now + self.flush_s
                self._write(complete=False)

    def _stack(self, frame: FrameType) -> list[FrameType]:
        """The sampled stack from the handler's frame down; empty outside the handler."""
        frames: list[FrameType] = []
        current: FrameType | None = frame
        while current is not None:
            frames.append(current)
            if current.f_code is self._entry:
                break
            current = current.f_back
        if self._entry is not None and current is None:
            return []
        frames.reverse()
        return frames[: self.max_depth]

    def _add(self, frame: FrameType, wall: float, cpu: float) -> None:
        stack = self._stack(frame)
        if not stack:
            return
        node = self.tree
        node.wall += wall
        node.cpu += cpu
        node.samples += 1
        where = []
        for f in stack:
            code = f.f_code
            key = (code.co_qualname, code.co_filename, code.co_firstlineno)
            if code.co_filename.startswith("<frozen importlib"):
                key = ("<import>", "", 0)  # one frame for the whole import machinery
            child = node.children.get(key)
            if child is None:
                if self.nodes >= self.max_nodes:
                    break
                child = _Node(key[0], short_path(key[1], self.root_dir) if key[1] else "", key[2])
                node.children[key] = child
                self.nodes += 1
            child.wall += wall
            child.cpu += cpu
            child.samples += 1
            line = f.f_lineno or 0
            child.lines[line] = child.lines.get(line, 0) + 1
            where.append({"function": child.function, "file": child.file, "line": line})
            node = child
            if key[0] == "<import>":
                break
        self.where = where

    # ------------------------------------------------------------ memory

    def _snapshot_at_peak(self) -> None:
        """The sites whenever the allocations grew by half; stop before a snapshot would pass
        the share of the limit that following allocations may take."""
        records = tracemalloc.get_tracemalloc_memory()
        if records * (1 + _SNAPSHOT_COST) > _BOOKKEEPING_SHARE * self.limit_mb * _MB:
            tracemalloc.stop()  # the sites at the last peak are kept
            return
        current, _ = tracemalloc.get_traced_memory()
        if current > _PEAK_MIN and current > 1.5 * self._peak_size:
            self._peak_sites = self._sites(tracemalloc.take_snapshot())
            self._peak_size = current

    def _memory(self, failure: BaseException | None) -> dict[str, Any]:
        status = read_status()
        rss_mb, hwm_mb = status.get("VmRSS", 0) / 1024, status.get("VmHWM", 0) / 1024
        facts: dict[str, Any] = {
            "baseline_mb": round(self._baseline_mb, 3),
            "peak_mb": round(max(hwm_mb, self._baseline_mb), 3),
            "allocated_peak_mb": round(max(0.0, hwm_mb - self._baseline_mb), 3),
            "in_use_mb": round(max(0.0, rss_mb - self._baseline_mb), 3),
            "limit_mb": self.limit_mb,
            "sites": [],
        }
        if tracemalloc.is_tracing():
            current, peak = tracemalloc.get_traced_memory()
            facts["allocated_peak_mb"] = round(peak / _MB, 3)
            facts["in_use_mb"] = round(current / _MB, 3)
            at_peak = self._peak_sites if self._peak_size > current else None
            facts["sites"] = at_peak or self._sites(tracemalloc.take_snapshot())
        elif self._peak_sites is not None:  # followed until the bookkeeping grew too large
            facts["sites"] = self._peak_sites
        if failure is not None:
            failed = failed_allocation(failure, self.root_dir)
            if failed is not None:
                facts["failed_allocation"] = failed
                # In a loop it would have gone on allocating: held + this one is no need.
                if failed.get("size_mb") is not None and not failed.get("repeats"):
                    facts["need_mb"] = round(rss_mb + failed["size_mb"], 3)
        return facts

    def _sites(self, snapshot: tracemalloc.Snapshot) -> list[dict[str, Any]]:
        """The ten lines of the function's own code that held the most memory."""
        sites: list[dict[str, Any]] = []
        mine = self.root_dir + os.sep
        for stat in snapshot.statistics("traceback"):
            if len(sites) >= 10:
                break
            frames = [f for f in stat.traceback if os.path.basename(f.filename) not in _OWN_NAMES]
            if not any(f.filename.startswith(mine) for f in frames):
                continue  # the worker's and the tracer's own memory
            sites.append(
                {
                    "file": short_path(frames[-1].filename, self.root_dir),
                    "line": frames[-1].lineno,
                    "size_mb": round(stat.size / _MB, 6),
                    "count": stat.count,
                    "stack": [_label(f, self.root_dir) for f in frames],  # oldest first
                }
            )
        return sites

    def _reached(self) -> dict[str, Any]:
        """What the invocation reached so far (for a worker killed before it finished)."""
        if not self.memory:
            return {}
        hwm_mb = read_status().get("VmHWM", 0) / 1024
        reached = {
            "baseline_mb": round(self._baseline_mb, 3),
            "peak_mb": round(max(hwm_mb, self._baseline_mb), 3),
            "allocated_peak_mb": round(max(0.0, hwm_mb - self._baseline_mb), 3),
            "in_use_mb": 0.0,
            "limit_mb": self.limit_mb,
        }
        if tracemalloc.is_tracing():
            current, peak = tracemalloc.get_traced_memory()
            reached["in_use_mb"] = round(current / _MB, 3)
            reached["allocated_peak_mb"] = round(peak / _MB, 3)
        return reached

    # ------------------------------------------------------------ output

    def _write(self, complete: bool) -> None:
        with self._lock:
            data = {
                "type": "trace",
                "complete": complete,
                "samples": self.tree.samples,
                "wall_ms": round((time.perf_counter() - self._started) * 1000, 3),
                "cpu_ms": round(self.tree.cpu * 1000, 3),
                "tree": self.tree.as_json(),
                "where": list(self.where),
                "exception": self.exception,
                "memory": self.memory_facts or self._reached(),
            }
        try:
            text = json.dumps(data)  # one call into the C encoder
            if len(text) > self.max_bytes:  # the host would stop the worker
                data["tree"] = None
                text = json.dumps(data)
            self._send(text)
        except (OSError, MemoryError, ValueError):
            pass  # a trace must never fail the invocation


_OWN_NAMES = {os.path.basename(name) for name in _OWN_FILES}


def _thread_count() -> int:
    """Threads of this process as the kernel counts them (as the host reads them)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def _wait_for_threads(count: int, timeout_s: float = 0.1) -> None:
    """Wait until the kernel has seen a joined thread exit (Python's join returns first).

    The host recycles a worker that has more threads after an invocation than before it.
    """
    deadline = time.monotonic() + timeout_s
    while _thread_count() > count and time.monotonic() < deadline:
        time.sleep(0.0005)


def read_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process in kB (empty where /proc is missing)."""
    status: dict[str, int] = {}
    try:
        with open("/proc/self/status") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    status[key] = int(value.split()[0])
    except OSError:
        pass
    return status


def describe_exception(error: BaseException, root: str) -> dict[str, Any]:
    """The exception's type, message and the innermost frame (file, line, function)."""
    frames = traceback.extract_tb(error.__traceback__)
    inner = frames[-1] if frames else None
    stack = [
        {"function": f.name, "file": short_path(f.filename, root), "line": f.lineno or 0}
        for f in frames
        if os.path.basename(f.filename) not in _OWN_NAMES
    ]
    return {
        "type": type(error).__name__,
        "message": str(error)[:500],
        "file": short_path(inner.filename, root) if inner else "",
        "line": (inner.lineno or 0) if inner else 0,
        "function": inner.name if inner else "",
        "stack": stack[-20:],
    }
