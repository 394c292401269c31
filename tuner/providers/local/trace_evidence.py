"""Evidence from traces: what a window's traced invocations show, as facts for decisions.

The local provider adds to each window's facts what that window's traces show: the most
memory one invocation needed and the allocation that failed, where the slowest one spent
its time, and the ids of the traces this rests on (the ones the evidence cites first).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from tuner.domain.model import WindowFacts
from tuner.providers.local.trace_executor import Tracing
from tuner.trace.model import CallNode, Trace
from tuner.trace.storing import TraceStore

_CITED = re.compile(r"\(trace ([0-9a-f]+)\)")
RECENT_IDS = 5
"""Recent traces named besides the ones the evidence cites."""


def _hot_call(trace: Trace) -> tuple[str, float, str] | None:
    """The child span that took the most of an invocation: (name, share, called-from)."""
    children = [s for s in trace.spans if s.kind in ("dependency", "invoke")]
    if not children or trace.duration_ms <= 0:
        return None
    by_name: dict[str, float] = {}
    for span in children:
        by_name[span.name] = by_name.get(span.name, 0.0) + span.duration_ms
    name, spent = max(by_name.items(), key=lambda item: item[1])
    method = "DependencyClient.get" if name.endswith(".get") else "Context.invoke"
    return name, min(1.0, spent / trace.duration_ms), _call_site(trace.tree, method)


def _call_site(tree: CallNode | None, function: str) -> str:
    """``file:line`` of the heaviest caller of ``function`` in a call tree, or ''."""
    if tree is None:
        return ""
    best: tuple[float, str] | None = None
    for path, node in tree.walk():
        if node.frame.function == function and path:
            caller = path[-1]
            site = f"{caller.frame.file}:{caller.busiest_line()}"
            if best is None or node.wall_ms > best[0]:
                best = (node.wall_ms, site)
    return best[1] if best else ""


def _hot_frame(trace: Trace) -> tuple[str, float, str] | None:
    """The user frame with the most own time: (label, share, called-from)."""
    if trace.tree is None or trace.tree.wall_ms <= 0:
        return None
    best: tuple[float, CallNode, CallNode | None] | None = None
    for path, node in trace.tree.walk():
        own = node.self_ms("wall")
        if best is None or own > best[0]:
            best = (own, node, path[-1] if path else None)
    if best is None:
        return None
    own, node, caller = best
    site = f"{caller.frame.file}:{caller.busiest_line()}" if caller else ""
    return node.frame.label, own / trace.tree.wall_ms, site


def hot_path(traces: Sequence[Trace]) -> str:
    """Where the slowest traced invocation spent its time, as one sentence (or '')."""
    if not traces:
        return ""
    slowest = max(traces, key=lambda t: t.duration_ms)
    found = _hot_call(slowest)
    if found is None or found[1] < 0.2:
        found = _hot_frame(slowest) or found
    if found is None:
        return ""
    name, share, site = found
    where = f", called from {site}" if site else ""
    text = f"{share:.0%} of the time in {name}{where}"
    if slowest.outcome == "timeout" and slowest.where:
        last = slowest.where[-1]
        text += f"; at the timeout it was in {last.function} ({last.file}:{last.line})"
    return text + f" (trace {slowest.trace_id})"


def hot_site(traces: Sequence[Trace]) -> str:
    """The code the slowest traced invocation was in when it timed out, else its busiest
    frame: ``crunch (handler.py:9)`` (or '')."""
    if not traces:
        return ""
    slowest = max(traces, key=lambda t: t.duration_ms)
    if slowest.outcome == "timeout" and slowest.where:
        return slowest.where[-1].label
    found = _hot_frame(slowest)
    return found[0] if found else ""


def memory_evidence(
    traces: Sequence[Trace], facts_text: dict[str, str]
) -> tuple[dict[str, float], str]:
    """Numeric memory facts and the allocation-site sentence from traced invocations.

    ``traced_peak_memory_mb``: the most memory one traced invocation needed (for one that
    ran out: what it held plus the allocation that failed, where that is its need);
    ``traced_failed_allocation_mb``: the size of that failed allocation, where its need
    includes it (not for one made in a loop, after which the invocation would have gone
    on allocating).  What the failed allocation grows with goes into ``facts_text``.
    """
    facts: dict[str, float] = {}
    needs = [
        (t.memory.need_mb if t.memory.need_mb is not None else t.memory.peak_mb, t)
        for t in traces
        if t.memory is not None
    ]
    if not needs:
        return facts, ""
    need, trace = max(needs, key=lambda item: item[0])
    facts["traced_peak_memory_mb"] = need
    memory = trace.memory
    assert memory is not None
    failed = memory.failed
    if failed is not None and failed.size_mb is not None and memory.need_mb is not None:
        facts["traced_failed_allocation_mb"] = failed.size_mb
    failing = [item for item in needs if item[1].memory and item[1].memory.failed]
    if failing:  # the failed allocation of the one that needed the most
        described = max(failing, key=lambda item: item[0])[1]
        assert described.memory is not None and described.memory.failed is not None
        failed = described.memory.failed
        if failed.grows_with:
            facts_text["allocation_grows_with"] = ", ".join(failed.grows_with)
        return facts, f"MemoryError: {failed.describe()} (trace {described.trace_id})"
    if memory.sites:
        top = memory.sites[0]
        return facts, (
            f"{top.size_mb:.0f} MB held at {top.file}:{top.line} at the peak"
            f" (trace {trace.trace_id})"
        )
    return facts, ""


def trace_facts(traces: Sequence[Trace]) -> tuple[dict[str, float], dict[str, str]]:
    """Numeric facts (for ``extra``) and text evidence from the traces of one window."""
    text: dict[str, str] = {}
    numbers, allocation = memory_evidence(traces, text)
    if traces:
        numbers["traced_invocations"] = float(len(traces))
    slow = [t for t in traces if t.outcome in ("timeout", "ok")]
    path = hot_path(slow)
    if path:
        text["hot_path"] = path
        text["hot_site"] = hot_site(slow)
    if allocation:
        text["allocation_site"] = allocation
    if traces:
        cited = _CITED.findall(f"{path} {allocation}")
        recent = [t.trace_id for t in traces[-RECENT_IDS:]]
        text["trace_ids"] = " ".join(dict.fromkeys([*cited, *recent]))
    return numbers, text


class StoredTraces:
    """The host's stored traces as cycles read them: each file parsed once, one tree a cycle.

    A cycle needs, of each function, the traces that may have ended in its window or the
    one before (the baseline of the topology), and the call tree of only the slowest
    finished one of the window (the hot path is read from it).  Stored traces do not
    change, so each file is parsed once and kept without its tree; the slowest one's file
    is read again for its tree.  However large and many the stored trees, a cycle parses
    the new ones and one more per function, and holds one tree per function.
    """

    def __init__(self, tracing: Tracing | None, longest_s: float) -> None:
        self.tracing = tracing
        self.longest_s = longest_s
        """The longest an invocation runs: a trace is filed under its start, this long before its end."""
        self._kept: dict[str, dict[Path, Trace]] = {}

    def window(self, functions: Iterable[str], start: float, end: float) -> dict[str, list[Trace]]:
        """Each function's traces for the window ``[start, end)`` and the one before it."""
        if self.tracing is None:
            return {}
        store = self.tracing.store
        found: dict[str, list[Trace]] = {}
        for name in functions:
            known = self._kept.get(name, {})
            current: dict[Path, Trace] = {}
            for path in store.files(name, since=2 * start - end - self.longest_s):
                trace = known.get(path) or store.read(path)
                if trace is not None:
                    current[path] = replace(trace, tree=None) if trace.tree else trace
            self._kept[name] = current  # pruned files, and those before the baseline, go
            found[name] = _with_slowest_tree(store, current, start, end)
        return found


def _with_slowest_tree(
    store: TraceStore, traces: dict[Path, Trace], start: float, end: float
) -> list[Trace]:
    """The traces, the slowest one that finished in ``[start, end)`` read again with its tree."""
    finished = [
        (trace.duration_ms, path)
        for path, trace in traces.items()
        if trace.outcome in ("ok", "timeout") and start <= trace.end < end
    ]
    found = dict(traces)
    if finished:
        slowest = max(finished)[1]
        found[slowest] = store.read(slowest) or traces[slowest]
    return list(found.values())


def in_window(traces: Iterable[Trace], start: float, end: float) -> list[Trace]:
    """The traces that ended in ``[start, end)`` (as invocations count)."""
    return [t for t in traces if start <= t.end < end]


def with_trace_facts(window: WindowFacts, traces: Sequence[Trace]) -> WindowFacts:
    """The window's facts plus what the window's traces show (unchanged without)."""
    if window.empty or not traces:
        return window
    numbers, text = trace_facts(traces)
    return replace(window, extra={**window.extra, **numbers}, evidence={**window.evidence, **text})
