"""The dependency that holds a local function's time, from the window's topology.

Adds ``evidence.slow_dependency`` to the window facts of each function that called a
dependency: the topology of the window comes from its traces when there are any, else
from the invocation timing the host records (the heuristic miner), and the previous
window of the same length is the baseline that tells which edge grew.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from tuner.domain.model import FunctionRef, WindowFacts
from tuner.mining.timing import Interval
from tuner.providers.local.recording import DependencyCallRecord, InvocationRecord, Records
from tuner.providers.local.trace_evidence import in_window
from tuner.trace.model import Trace
from tuner.trace.slow_dependency import slow_dependency
from tuner.trace.topology import Topology, from_timing, from_traces

SLACK_S = 0.002
"""The host stamps invocations and dependency calls with one clock: little slack is needed."""


def intervals(
    invocations: Iterable[InvocationRecord], calls: Iterable[DependencyCallRecord]
) -> tuple[list[Interval], dict[str, str]]:
    """Invocations and dependency calls as intervals, and each node's kind."""
    found = [
        Interval(i.function, i.end - i.duration_ms / 1000, i.end, i.outcome != "ok")
        for i in invocations
    ]
    calls = list(calls)
    found += [Interval(c.name, c.time - c.latency_ms / 1000, c.time, bool(c.error)) for c in calls]
    kinds = {i.node: "function" for i in found} | {c.name: "dependency" for c in calls}
    return found, kinds


def _timing(
    invocations: Sequence[InvocationRecord], calls: Sequence[DependencyCallRecord]
) -> Topology:
    found, kinds = intervals(invocations, calls)
    return from_timing(found, kinds, slack=SLACK_S)


def with_slow_dependencies(
    windows: Mapping[FunctionRef, WindowFacts],
    invocations: Mapping[str, Sequence[InvocationRecord]],
    calls: Mapping[str, Sequence[DependencyCallRecord]],
    stored: Mapping[str, Sequence[Trace]],
    records: Records,
) -> dict[FunctionRef, WindowFacts]:
    """The windows, with ``evidence.slow_dependency`` where a function called a dependency.

    ``stored`` holds each function's stored traces (:meth:`trace_evidence.StoredTraces.window`).
    """
    out = dict(windows)
    callers = [ref for ref, w in windows.items() if calls.get(ref.name) and not w.empty]
    if not callers:
        return out
    start, end = windows[callers[0]].start, windows[callers[0]].end
    names = [ref.name for ref in windows]
    timing: tuple[Topology, Topology] | None = None
    for ref in callers:
        traces = in_window(stored.get(ref.name, ()), start, end)
        if traces:
            earlier = in_window(stored[ref.name], 2 * start - end, start)
            topology, baseline = from_traces(traces), from_traces(earlier)
            durations = [t.duration_ms for t in traces]
        else:
            if timing is None:
                now = [i for group in invocations.values() for i in group]
                made = [c for group in calls.values() for c in group]
                before = records.invocations(names, 2 * start - end, start)
                before_calls = records.dependency_calls(names, 2 * start - end, start)
                timing = (_timing(now, made), _timing(before, before_calls))
            topology, baseline = timing
            durations = [i.duration_ms for i in invocations.get(ref.name, ())]
        p95 = windows[ref].duration_p95_ms
        text = slow_dependency(ref.name, durations, topology, baseline, p95)
        if text:
            window = out[ref]
            out[ref] = replace(window, evidence={**window.evidence, "slow_dependency": text})
    return out
