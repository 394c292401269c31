"""The local host's topology from its records, and the dependency that holds a function's time.

The host records every invocation (with the host's own start and end stamps, so a
nested invocation lies strictly inside its caller's) and every dependency call with the
function that made it.  So calls to dependencies are known exactly (evidence
``record``), and only calls between functions are inferred from timing.

Adds ``evidence.slow_dependency`` to the window facts of each function that called a
dependency: the topology of the window comes from its traces when there are any, else
from the recorded calls, and the previous window of the same length is the baseline
that tells which edge grew.
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
from tuner.trace.topology import (
    RecordedCall,
    Topology,
    from_records,
    from_timing,
    from_traces,
    merge,
)


def intervals(invocations: Iterable[InvocationRecord]) -> list[Interval]:
    """Invocations as intervals between the host's own start and end stamps."""
    return [Interval(i.function, i.start, i.end, i.outcome != "ok") for i in invocations]


def recorded_calls(calls: Iterable[DependencyCallRecord]) -> Topology:
    """The recorded dependency calls as exact edges."""
    return from_records(
        RecordedCall(c.function, c.name, c.latency_ms, bool(c.error)) for c in calls
    )


def host_topology(
    invocations: Sequence[InvocationRecord], calls: Iterable[DependencyCallRecord]
) -> Topology:
    """What the records show: the dependency calls, and the calls between functions that
    timing supports."""
    return merge(recorded_calls(calls), from_timing(intervals(invocations), {}))


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
    recorded: tuple[Topology, Topology] | None = None
    for ref in callers:
        traces = in_window(stored.get(ref.name, ()), start, end)
        if traces:
            earlier = in_window(stored[ref.name], 2 * start - end, start)
            topology, baseline = from_traces(traces), from_traces(earlier)
            durations = [t.duration_ms for t in traces]
        else:
            if recorded is None:
                made = [c for group in calls.values() for c in group]
                before = records.dependency_calls(names, 2 * start - end, start)
                recorded = (recorded_calls(made), recorded_calls(before))
            topology, baseline = recorded
            durations = [i.duration_ms for i in invocations.get(ref.name, ())]
        p95 = windows[ref].duration_p95_ms
        text = slow_dependency(ref.name, durations, topology, baseline, p95)
        if text:
            window = out[ref]
            out[ref] = replace(window, evidence={**window.evidence, "slow_dependency": text})
    return out
