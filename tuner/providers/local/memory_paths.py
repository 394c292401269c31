"""The code path that holds most of a function's memory, from its traces' memory flame graph.

Of the window's traced invocations whose allocations were followed, the one that needed
the most memory gives the path: its allocation sites (the lines of the function's code
that held memory at its peak, each with the stack that led to it) are grouped by the
line of the handler they came through, and the largest group is the path.  The facts
(``extra.memory_path_*``, :mod:`tuner.engine.shape_facts`) say what share of that
invocation's peak (the worker's own memory included) the path holds, what the rest of the
function needs without it, and how many of the traced invocations went down it (peaked
above the rest by half the path).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from tuner.domain.model import WindowFacts
from tuner.trace.model import AllocationSite, Trace


def _path_of(site: AllocationSite) -> str:
    """The handler's line an allocation came through (its outermost frame in the function)."""
    return site.stack[0] if site.stack else f"{site.file}:{site.line}"


def memory_path(
    traces: Sequence[Trace],
) -> tuple[dict[str, float], dict[str, str]] | None:
    """The memory-path facts and evidence of the traces, or None without followed allocations."""
    profiled = [t for t in traces if t.memory is not None and t.memory.sites]
    if not profiled:
        return None
    worst = max(profiled, key=lambda t: t.memory.peak_mb if t.memory else 0.0)
    assert worst.memory is not None
    held: dict[str, float] = defaultdict(float)
    deepest: dict[str, AllocationSite] = {}
    for site in worst.memory.sites:
        path = _path_of(site)
        held[path] += site.size_mb
        if path not in deepest or site.size_mb > deepest[path].size_mb:
            deepest[path] = site
    path, path_mb = max(held.items(), key=lambda item: (item[1], item[0]))
    peak_mb = worst.memory.peak_mb
    if peak_mb <= 0 or path_mb <= 0:
        return None
    rest_mb = max(0.0, peak_mb - path_mb)
    peaks = [t.memory.peak_mb for t in traces if t.memory is not None]
    down = sum(1 for peak in peaks if peak >= rest_mb + path_mb / 2)
    site = deepest[path]
    inner = site.stack[-1] if len(site.stack) > 1 else ""
    named = f"{path} -> {inner}" if inner and inner != path else path
    facts = {
        "memory_path_share": min(1.0, path_mb / peak_mb),
        "memory_path_mb": path_mb,
        "memory_rest_mb": rest_mb,
        "memory_path_invocations_share": down / len(peaks),
    }
    return facts, {"memory_path": f"{named} (trace {worst.trace_id})"}


def with_memory_path_facts(window: WindowFacts, traces: Sequence[Trace]) -> WindowFacts:
    """The window with its memory-path facts (unchanged without followed allocations)."""
    found = None if window.empty else memory_path(traces)
    if found is None:
        return window
    facts, evidence = found
    return replace(
        window, extra={**window.extra, **facts}, evidence={**window.evidence, **evidence}
    )
