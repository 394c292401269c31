"""The tracer's ``trace`` messages as the host reads them: checked, then made trace fields.

A message comes from the worker, where the handler runs too, so it is the worker's word:
its shape is checked and its numbers must be finite and not negative, else the profile
is left out of the trace (the host's own spans, outcome and times stay).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tuner.trace.model import ExceptionInfo, Frame, MemoryProfile, call_tree, memory_profile


def profile_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The tracer's part of a trace from its message; nothing of it when it is malformed.

    The message comes from the worker, where the handler could have written it: it is
    checked for shape and for numbers that are finite and not negative.
    """
    try:
        exception = data.get("exception")
        memory = memory_profile(data["memory"]) if data.get("memory") else None
        samples, cpu_ms = int(data.get("samples", 0)), float(data.get("cpu_ms", 0.0))
        profile = {
            "tree": call_tree(data["tree"]) if data.get("tree") else None,
            "samples": samples,
            "cpu_ms": cpu_ms,
            "where": tuple(
                Frame(str(f["function"]), str(f["file"]), int(f["line"]))
                for f in data.get("where", [])
            ),
            "exception": ExceptionInfo(
                str(exception["type"]),
                str(exception["message"]),
                str(exception["file"]),
                int(exception["line"]),
                str(exception["function"]),
            )
            if exception
            else None,
            "memory": memory if memory is None or _plausible(memory) else None,
            "complete": bool(data.get("complete", False)),
        }
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError):
        return {}
    if not _plausible_number(cpu_ms) or samples < 0:
        return {}
    return profile


def _plausible_number(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value >= 0


def _plausible(memory: MemoryProfile) -> bool:
    """True when every figure of a memory profile is a finite, non-negative number."""
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
    return all(_plausible_number(n) and not isinstance(n, bool) for n in numbers)
