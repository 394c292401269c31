"""The tracer inside a worker: samples the handler's call stack, CPU time and memory.

Standard library only (a worker may run on an interpreter that cannot see tuner's
dependencies).  A sampling thread reads the handler thread's stack every ``interval_s``
and charges the wall and CPU time since the previous sample to that stack; ``tracemalloc``
follows the invocation's allocations.  The profile so far is flushed to a JSON file every
``flush_s`` (atomically, by rename), so an invocation killed for time or memory still leaves
where it was and what it had reached; :meth:`InvocationTracer.finish` writes the final one.

The file holds ``{"complete", "samples", "wall_ms", "cpu_ms", "tree", "where",
"exception", "memory"}``; the tree is nested ``{"function", "file", "line", "wall_ms",
"cpu_ms", "samples", "lines", "children"}`` nodes under a root.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import threading
import time
import traceback
import tracemalloc
from types import FrameType, TracebackType
from typing import Any

_MB = 1024 * 1024
_OWN_FILES = (__file__, "worker.py")


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


def short_path(path: str, root: str) -> str:
    """A frame's file as people read it: relative to the function, else its last two parts."""
    if root and path.startswith(root + os.sep):
        return path[len(root) + 1 :]
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


class InvocationTracer:
    """Traces one invocation of a handler running on the thread that creates it."""

    def __init__(
        self, options: dict[str, Any], root: str, memory_limit_mb: int, entry: Any = None
    ) -> None:
        self.path: str = options["path"]
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
        self._peak: tracemalloc.Snapshot | None = None
        self._peak_size = 0

    # ------------------------------------------------------------ lifecycle

    def start(self, baseline_rss_mb: float) -> None:
        """Start sampling (and tracing allocations) from now."""
        self._baseline_mb = baseline_rss_mb
        if self.allocations:
            tracemalloc.start(self.memory_frames)
        sys.setswitchinterval(min(self._switch, self.interval_s))
        self._started = time.perf_counter()
        self._sampler = threading.Thread(target=self._run, name="tuner-tracer", daemon=True)
        self._sampler.start()

    def finish(self, error: BaseException | None, out_of_memory: bool) -> None:
        """Stop sampling, record the exception and memory, and write the final file."""
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
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
            if self.allocations:
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
        """Keep a snapshot of the allocations whenever they grew past the last one by half."""
        current, _ = tracemalloc.get_traced_memory()
        if current > _MB and current > 1.5 * self._peak_size:
            self._peak = tracemalloc.take_snapshot()
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
            at_peak = self._peak if self._peak is not None and self._peak_size > current else None
            facts["sites"] = self._sites(at_peak or tracemalloc.take_snapshot())
        if failure is not None:
            failed = failed_allocation(failure, self.root_dir)
            if failed is not None:
                facts["failed_allocation"] = failed
                if failed.get("size_mb") is not None:
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
                    "size_mb": round(stat.size / _MB, 3),
                    "count": stat.count,
                    "stack": [
                        f"{short_path(f.filename, self.root_dir)}:{f.lineno}"
                        for f in frames  # oldest first, as tracemalloc orders them
                    ],
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
                "complete": complete,
                "samples": self.tree.samples,
                "wall_ms": round((time.perf_counter() - self._started) * 1000, 3),
                "cpu_ms": round(self.tree.cpu * 1000, 3),
                "tree": self.tree.as_json(),
                "where": list(self.where),
                "exception": self.exception,
                "memory": self.memory_facts or self._reached(),
            }
        partial = f"{self.path}.tmp{threading.get_ident()}"
        try:
            text = json.dumps(data)  # one call into the C encoder: json.dump writes piecemeal
            with open(partial, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(partial, self.path)
        except (OSError, MemoryError):
            pass  # a trace must never fail the invocation


_OWN_NAMES = {os.path.basename(name) for name in _OWN_FILES}


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


# ---------------------------------------------------------------- failed allocations

_SIZED_TYPES = {"bytearray": 1, "bytes": 1}
_SAFE_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv)
_MAX_SIZE = 1 << 48


def failed_allocation(error: BaseException, root: str) -> dict[str, Any] | None:
    """The allocation a MemoryError came from, with its size when the code states it.

    Python does not tell how much memory a failed request asked for.  The innermost frame
    of the traceback does: when its line is ``bytearray(n)``, ``bytes(n)``, ``b"x" * n`` or
    ``[v] * n``, ``n`` is evaluated again from the frame's variables, allowing only names,
    constants, ``+ - * //`` and subscripts of plain dicts and lists (nothing that could run
    code).  The names it reads are listed: what the allocation grows with.
    """
    tb: TracebackType | None = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return None
    frame = tb.tb_frame
    site = {
        "file": short_path(frame.f_code.co_filename, root),
        "line": tb.tb_lineno,
        "function": frame.f_code.co_name,
    }
    source = _source_line(frame.f_code.co_filename, tb.tb_lineno)
    if source is None:
        return None
    try:
        tree = ast.parse(source.strip(), mode="exec")
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        sized = _sized(node)
        if sized is None:
            continue
        kind, expression, unit = sized
        names: list[str] = []
        try:
            count = _evaluate(expression, frame.f_locals, frame.f_globals, names)
        except (_Unsafe, ArithmeticError, LookupError, TypeError):
            continue
        if not isinstance(count, int) or not 0 <= count * unit <= _MAX_SIZE:
            continue
        return {
            **site,
            "kind": kind,
            "code": source.strip()[:200],
            "size_mb": round(count * unit / _MB, 3),
            "grows_with": names,
        }
    return {**site, "code": source.strip()[:200]}


def _source_line(path: str, line: int) -> str | None:
    try:
        with open(path, encoding="utf-8") as source:
            for number, text in enumerate(source, start=1):
                if number == line:
                    return text
    except OSError:
        return None
    return None


def _sized(node: ast.AST) -> tuple[str, ast.expr, int] | None:
    """An allocation whose size one expression gives: (kind, size expression, bytes per unit)."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _SIZED_TYPES
        and len(node.args) == 1
        and not node.keywords
    ):
        return node.func.id, node.args[0], _SIZED_TYPES[node.func.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for sequence, count in ((node.left, node.right), (node.right, node.left)):
            if isinstance(sequence, ast.Constant) and isinstance(sequence.value, bytes):
                return "bytes", count, max(1, len(sequence.value))
            if isinstance(sequence, ast.List) and len(sequence.elts) == 1:
                return "list", count, 8
    return None


class _Unsafe(Exception):
    """The expression could run code or is not understood."""


def _evaluate(node: ast.expr, local: dict[str, Any], glob: dict[str, Any], names: list[str]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in local:
            value = local[node.id]
        elif node.id in glob:
            value = glob[node.id]
        else:
            raise _Unsafe(node.id)
        if type(value) not in (int, dict, list, tuple):
            raise _Unsafe(node.id)
        if not (node.id.isupper() and isinstance(value, int)):
            names.append(node.id)  # constants are not what it grows with
        return value
    if isinstance(node, ast.BinOp) and isinstance(node.op, _SAFE_OPERATORS):
        left = _evaluate(node.left, local, glob, names)
        right = _evaluate(node.right, local, glob, names)
        if not (type(left) is int and type(right) is int):
            raise _Unsafe("operands")
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        return left // right
    if isinstance(node, ast.Subscript):
        container = _evaluate(node.value, local, glob, names)
        key = node.slice
        if not isinstance(key, ast.Constant) or type(container) not in (dict, list, tuple):
            raise _Unsafe("subscript")
        if names:
            names[-1] = f"{names[-1]}[{key.value!r}]"
        return container[key.value]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("int", "len")
        and len(node.args) == 1
        and glob.get("__builtins__") is not None
    ):
        value = _evaluate(node.args[0], local, glob, names)
        if node.func.id == "len" and type(value) in (dict, list, tuple):
            return len(value)
        if node.func.id == "int" and type(value) is int:
            return value
        raise _Unsafe("call")
    raise _Unsafe(type(node).__name__)
