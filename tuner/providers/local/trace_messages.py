"""The tracer's ``trace`` messages as the host reads them: checked, capped, then made trace fields.

A message comes from the worker, where the handler runs too, so it is the worker's word.
The host holds it to the caps of the function's tracing, whatever the worker did with
them: at most ``max_nodes`` frames in the call tree, ``max_depth`` deep, a bounded number
of lines per frame and of allocation sites.  What goes past a cap is cut, and the trace
says so (:attr:`Profile.cut`).  Every number must be finite, not negative and within
range: no time longer than the invocation ran (with a second's slack), no more samples
than the tracer could take in that time, no memory figure above 1 TiB.  A profile with
a number out of range, or of the wrong shape, is left out of the trace altogether (the
host's own spans, outcome and times stay).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tuner.trace.model import CallNode, ExceptionInfo, Frame, MemoryProfile, memory_profile

MAX_MB = float(1 << 20)
"""No memory figure of a profile is above 1 TiB."""
MAX_LINES = 200
"""Lines kept per frame (the busiest)."""
MAX_SITES = 100
"""Allocation sites kept per profile."""
MAX_TEXT = 500
"""Characters kept of a name, a file or a message."""
_SLACK_MS = 1000.0


@dataclass(frozen=True, slots=True)
class ProfileCaps:
    """What a profile may hold: nodes, depth, and the ranges of its numbers."""

    max_nodes: int
    max_depth: int
    max_ms: float
    """The longest time any figure may show: the invocation's duration and some slack."""
    max_samples: int

    @staticmethod
    def of(max_nodes: int, max_depth: int, interval_ms: float, duration_ms: float) -> ProfileCaps:
        """The caps of an invocation that ran ``duration_ms``, sampled every ``interval_ms``."""
        max_ms = duration_ms + _SLACK_MS
        return ProfileCaps(max_nodes, max_depth, max_ms, int(max_ms / interval_ms) + 100)


@dataclass(slots=True)
class Profile:
    """The trace fields taken from a message, and what was cut from it."""

    fields: dict[str, Any] = field(default_factory=dict)
    cut: list[str] = field(default_factory=list)


class _Implausible(ValueError):
    """A number out of range, or a value of the wrong kind."""


def checked_profile(data: Mapping[str, Any], caps: ProfileCaps) -> Profile:
    """The tracer's part of a trace from its message, held to ``caps``.

    Nothing of it when it is malformed or a number is out of range; cut (and saying
    where) when it holds more than the caps allow.
    """
    profile = Profile()
    try:
        cpu_ms = _number(data.get("cpu_ms", 0.0), caps.max_ms * (os.cpu_count() or 1))
        samples = int(_number(data.get("samples", 0), caps.max_samples))
        tree = data.get("tree")
        exception = data.get("exception")
        where = data.get("where") or []
        if len(where) > caps.max_depth:
            profile.cut.append(f"stack of {len(where)} frames over {caps.max_depth}")
        profile.fields = {
            "tree": _tree(tree, caps, profile.cut) if tree else None,
            "samples": samples,
            "cpu_ms": cpu_ms,
            "where": tuple(_frame(f) for f in where[: caps.max_depth]),
            "exception": _exception(exception) if exception else None,
            "memory": _memory(data["memory"], caps, profile.cut) if data.get("memory") else None,
            "complete": bool(data.get("complete", False)),
        }
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as error:
        return Profile(cut=[f"profile left out: {type(error).__name__}: {str(error)[:80]}"])
    if profile.cut:
        profile.fields["complete"] = False
    return profile


def _number(value: object, most: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Implausible(f"not a number: {str(value)[:40]!r}")
    if not math.isfinite(value) or not 0 <= value <= most:
        raise _Implausible(f"out of range: {value!r}")
    return float(value)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise _Implausible("not a string")
    return value[:MAX_TEXT]


def _frame(data: Mapping[str, Any]) -> Frame:
    return Frame(_text(data["function"]), _text(data["file"]), int(_number(data["line"], 1e7)))


def _tree(root: Mapping[str, Any], caps: ProfileCaps, cut: list[str]) -> CallNode:
    """The call tree, at most ``max_nodes`` frames and ``max_depth`` deep."""
    budget = [caps.max_nodes - 1]
    dropped = {"nodes": 0, "depth": 0, "lines": 0}
    tree = _node(root, caps, 1, budget, dropped)
    if dropped["nodes"]:
        cut.append(f"call tree over {caps.max_nodes} frames")
    if dropped["depth"]:
        cut.append(f"call tree deeper than {caps.max_depth}")
    if dropped["lines"]:
        cut.append(f"frames with more than {MAX_LINES} lines")
    return tree


def _node(
    data: Mapping[str, Any],
    caps: ProfileCaps,
    depth: int,
    budget: list[int],
    dropped: dict[str, int],
) -> CallNode:
    lines = data.get("lines", {})
    if len(lines) > MAX_LINES:
        dropped["lines"] += 1
        lines = dict(sorted(lines.items(), key=lambda item: -item[1])[:MAX_LINES])
    children = []
    for child in data.get("children", []):
        if not isinstance(child, Mapping):
            raise _Implausible("a child that is not a frame")
        if depth >= caps.max_depth:
            dropped["depth"] += 1
            break
        if budget[0] <= 0:
            dropped["nodes"] += 1
            break
        budget[0] -= 1
        children.append(_node(child, caps, depth + 1, budget, dropped))
    return CallNode(
        frame=Frame(
            _text(data["function"]),
            _text(data.get("file", "")),
            int(_number(data.get("line", 0), 1e7)),
        ),
        wall_ms=_number(data.get("wall_ms", 0.0), caps.max_ms),
        cpu_ms=_number(data.get("cpu_ms", 0.0), caps.max_ms * (os.cpu_count() or 1)),
        samples=int(_number(data.get("samples", 0), caps.max_samples)),
        lines={
            int(_number(int(line), 1e7)): int(_number(count, caps.max_samples))
            for line, count in lines.items()
        },
        children=tuple(children),
    )


def _exception(data: Mapping[str, Any]) -> ExceptionInfo:
    return ExceptionInfo(
        _text(data["type"]),
        _text(data["message"]),
        _text(data["file"]),
        int(_number(data["line"], 1e7)),
        _text(data["function"]),
    )


def _memory(data: Mapping[str, Any], caps: ProfileCaps, cut: list[str]) -> MemoryProfile:
    sites = data.get("sites", [])
    if len(sites) > MAX_SITES:
        cut.append(f"{len(sites)} allocation sites over {MAX_SITES}")
        data = {**data, "sites": sites[:MAX_SITES]}
    memory = memory_profile(data)
    numbers: list[object] = [
        memory.peak_mb,
        memory.baseline_mb,
        memory.allocated_peak_mb,
        memory.in_use_mb,
        memory.limit_mb,
        *(site.size_mb for site in memory.sites),
    ]
    if memory.need_mb is not None:
        numbers.append(memory.need_mb)
    if memory.failed is not None and memory.failed.size_mb is not None:
        numbers.append(memory.failed.size_mb)
    for number in numbers:
        _number(number, MAX_MB)
    return memory
