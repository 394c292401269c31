"""Trace values: spans, the sampled call tree, memory at the peak, and their JSON form.

A :class:`Trace` is one traced invocation of one function: its spans (the invocation
itself, then every dependency call and nested function call as a child span), the call
tree of Python frames with wall and CPU time, the exception, and the memory it reached.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

SpanKind = str
"""``function`` (an invocation), ``dependency`` (a call to a named dependency) or
``invoke`` (a call to another hosted function)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One Python frame: function name, file and line."""

    function: str
    file: str
    line: int

    @property
    def label(self) -> str:
        """``function (file:line)``, as flame graphs and tables show it."""
        return f"{self.function} ({self.file}:{self.line})" if self.file else self.function


@dataclass(frozen=True, slots=True)
class CallNode:
    """One frame of the call tree with the time spent in it and below it."""

    frame: Frame
    wall_ms: float
    cpu_ms: float
    samples: int = 0
    lines: Mapping[int, int] = field(default_factory=dict)
    """Samples per line executing in this frame (for a caller: where it made the call)."""
    children: tuple[CallNode, ...] = ()

    def self_ms(self, kind: str = "wall") -> float:
        """Time spent in this frame itself, not in its children."""
        own = self.cpu_ms if kind == "cpu" else self.wall_ms
        below = sum(c.cpu_ms if kind == "cpu" else c.wall_ms for c in self.children)
        return max(0.0, own - below)

    def walk(
        self, path: tuple[CallNode, ...] = ()
    ) -> Iterator[tuple[tuple[CallNode, ...], CallNode]]:
        """Every node below this one with the path of nodes leading to it (depth first)."""
        for child in self.children:
            yield path, child
            yield from child.walk((*path, child))

    def busiest_line(self) -> int:
        """The line that was executing in this frame most often (its own line if none)."""
        if not self.lines:
            return self.frame.line
        return max(self.lines.items(), key=lambda item: (item[1], -item[0]))[0]


@dataclass(frozen=True, slots=True)
class Span:
    """One timed operation of a trace (OpenTelemetry's span, without the SDK)."""

    span_id: str
    parent_id: str
    name: str
    kind: SpanKind
    start: float
    """Seconds since the epoch."""
    end: float
    error: str = ""
    attributes: Mapping[str, str | float | int | bool] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        """How long the span took."""
        return (self.end - self.start) * 1000


@dataclass(frozen=True, slots=True)
class AllocationSite:
    """A line that held memory when the profile was taken."""

    file: str
    line: int
    size_mb: float
    count: int
    stack: tuple[str, ...] = ()
    """``file:line`` of each frame that led to the allocation, outermost first."""


@dataclass(frozen=True, slots=True)
class FailedAllocation:
    """The allocation a MemoryError came from; its size when the code states it."""

    file: str
    line: int
    function: str
    code: str
    kind: str = ""
    size_mb: float | None = None
    grows_with: tuple[str, ...] = ()

    def describe(self) -> str:
        """E.g. ``bytearray of 176 MB at handler.py:8 (grows with pages)``."""
        what = self.kind or "an allocation"
        size = f" of {self.size_mb:.0f} MB" if self.size_mb is not None else ""
        grows = f" (grows with {', '.join(self.grows_with)})" if self.grows_with else ""
        return f"{what}{size} at {self.file}:{self.line}{grows}"


@dataclass(frozen=True, slots=True)
class MemoryProfile:
    """Memory of one invocation: the peak it reached and who held it."""

    peak_mb: float
    """Resident memory at the start plus the most the invocation allocated at once."""
    baseline_mb: float
    allocated_peak_mb: float
    in_use_mb: float
    limit_mb: float
    sites: tuple[AllocationSite, ...] = ()
    failed: FailedAllocation | None = None
    need_mb: float | None = None
    """For an invocation out of memory: what it held plus the allocation that failed."""


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """The exception an invocation ended with, and where it was raised."""

    type: str
    message: str
    file: str
    line: int
    function: str


@dataclass(frozen=True, slots=True)
class Trace:
    """One traced invocation of one function."""

    trace_id: str
    span_id: str
    function: str
    start: float
    end: float
    outcome: str
    error: str = ""
    revision: int = 0
    parent_span_id: str = ""
    spans: tuple[Span, ...] = ()
    tree: CallNode | None = None
    samples: int = 0
    cpu_ms: float = 0.0
    where: tuple[Frame, ...] = ()
    """The stack at the last sample: where a killed invocation was."""
    exception: ExceptionInfo | None = None
    memory: MemoryProfile | None = None
    complete: bool = True
    """False when the worker was killed and the trace is what it had flushed."""

    @property
    def duration_ms(self) -> float:
        """How long the invocation took."""
        return (self.end - self.start) * 1000

    def as_json(self) -> dict[str, Any]:
        """The trace as stored and as ``tuner traces --json`` prints it."""
        return {**asdict(self), "duration_ms": round(self.duration_ms, 3)}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Trace:
        """Read a trace written by :meth:`as_json`."""
        return Trace(
            trace_id=data["trace_id"],
            span_id=data["span_id"],
            function=data["function"],
            start=data["start"],
            end=data["end"],
            outcome=data["outcome"],
            error=data.get("error", ""),
            revision=data.get("revision", 0),
            parent_span_id=data.get("parent_span_id", ""),
            spans=tuple(
                Span(**{**s, "attributes": s.get("attributes", {})}) for s in data.get("spans", [])
            ),
            tree=_stored_tree(data["tree"]) if data.get("tree") else None,
            samples=data.get("samples", 0),
            cpu_ms=data.get("cpu_ms", 0.0),
            where=tuple(Frame(**f) for f in data.get("where", [])),
            exception=ExceptionInfo(**data["exception"]) if data.get("exception") else None,
            memory=memory_profile(data["memory"]) if data.get("memory") else None,
            complete=data.get("complete", True),
        )


def call_tree(data: Mapping[str, Any]) -> CallNode:
    """A call tree from the tracer's nested JSON nodes."""
    return CallNode(
        frame=Frame(data["function"], data.get("file", ""), data.get("line", 0)),
        wall_ms=float(data.get("wall_ms", 0.0)),
        cpu_ms=float(data.get("cpu_ms", 0.0)),
        samples=int(data.get("samples", 0)),
        lines={int(k): int(v) for k, v in data.get("lines", {}).items()},
        children=tuple(call_tree(c) for c in data.get("children", [])),
    )


def memory_profile(data: Mapping[str, Any]) -> MemoryProfile:
    """A memory profile from the tracer's JSON."""
    failed = data.get("failed_allocation") or data.get("failed")
    return MemoryProfile(
        peak_mb=float(data.get("peak_mb", 0.0)),
        baseline_mb=float(data.get("baseline_mb", 0.0)),
        allocated_peak_mb=float(data.get("allocated_peak_mb", 0.0)),
        in_use_mb=float(data.get("in_use_mb", 0.0)),
        limit_mb=float(data.get("limit_mb", 0.0)),
        sites=tuple(
            AllocationSite(
                file=s["file"],
                line=s["line"],
                size_mb=s["size_mb"],
                count=s["count"],
                stack=tuple(s.get("stack", ())),
            )
            for s in data.get("sites", [])
        ),
        failed=FailedAllocation(
            file=failed["file"],
            line=failed["line"],
            function=failed.get("function", ""),
            code=failed.get("code", ""),
            kind=failed.get("kind", ""),
            size_mb=failed.get("size_mb"),
            grows_with=tuple(failed.get("grows_with", ())),
        )
        if failed
        else None,
        need_mb=data.get("need_mb"),
    )


def _stored_tree(data: Mapping[str, Any]) -> CallNode:
    """A call tree as :meth:`Trace.as_json` stores it."""
    return CallNode(
        frame=Frame(**data["frame"]),
        wall_ms=data["wall_ms"],
        cpu_ms=data["cpu_ms"],
        samples=data["samples"],
        lines={int(k): int(v) for k, v in data["lines"].items()},
        children=tuple(_stored_tree(c) for c in data["children"]),
    )
