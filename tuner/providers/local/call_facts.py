"""Calls between local functions, from traces: who calls a function, how often, at what overhead.

Traces are the source of truth for the edges: a caller's trace holds a span for each
``context.invoke`` (its ``span_id`` is the callee's trace's parent), and the callee's
trace holds its duration in its worker (``tuner.duration_ms``, the host's measure) and
its handler's own time (``tuner.handler_ms``).  The overhead of a call is what the caller
waited beyond the callee's time in its worker, up to the end of the callee's trace: the
hop to a worker, the wait for one, a cold start, the host's bookkeeping.  Tracing's own
cost (the tracer in the worker, the trace written after) is left out: an untraced call
does not pay it.  The overhead's share is set against the handler's own time.  Traces may
be a sample: counts are scaled by the caller's invocations over its traced ones.

The facts land on the callee's window (see :mod:`tuner.engine.shape_facts`), with its
busiest caller's p95, memory and peak, and the memory-seconds the pair was billed per
call (a fused callee's own are inside its caller's).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from tuner.domain.model import FunctionConfig, FunctionRef, WindowFacts
from tuner.providers.local.recording import InvocationRecord
from tuner.providers.local.trace_executor import IN_WORKER, OWN_DURATION
from tuner.trace.model import Span, Trace


@dataclass
class _Edge:
    """What a window's traces show of one caller's calls to one callee."""

    spans: list[Span] = field(default_factory=list)
    """The caller's span of each traced call."""


def _attribute(trace: Trace, name: str) -> float:
    """A number its root span holds; the trace's duration without one."""
    root = next((s for s in trace.spans if s.kind == "function"), None)
    value = root.attributes.get(name) if root is not None else None
    return float(value) if isinstance(value, int | float) else trace.duration_ms


def overhead(span: Span, callee: Trace) -> tuple[float, float]:
    """(the call's overhead, the callee's own time) in ms, from the caller's span and its trace."""
    end = min(span.end, callee.end)  # the callee's trace is written after it ends
    waited = (end - span.start) * 1000
    return max(0.0, waited - _attribute(callee, IN_WORKER)), _attribute(callee, OWN_DURATION)


def callers_of(traces: Mapping[str, Sequence[Trace]]) -> dict[str, dict[str, _Edge]]:
    """For each callee: its callers and their traced calls to it."""
    edges: dict[str, dict[str, _Edge]] = defaultdict(dict)
    for caller, found in traces.items():
        for trace in found:
            for span in trace.spans:
                if span.kind != "invoke":
                    continue
                callee = str(span.attributes.get("faas.invoked_name", ""))
                if callee and callee != caller:
                    edges[callee].setdefault(caller, _Edge()).spans.append(span)
    return edges


def with_call_facts(
    windows: Mapping[FunctionRef, WindowFacts],
    configs: Mapping[str, FunctionConfig],
    invocations: Mapping[str, Sequence[InvocationRecord]],
    traces: Mapping[str, Sequence[Trace]],
) -> tuple[dict[FunctionRef, WindowFacts], dict[str, frozenset[str]]]:
    """The windows with the call facts of every called function, and each one's callers.

    ``traces`` are each function's traces of the window.
    """
    out = dict(windows)
    by_name = {ref.name: ref for ref in windows}
    edges = callers_of(traces)
    called = {
        trace.parent_span_id: trace
        for found in traces.values()
        for trace in found
        if trace.parent_span_id
    }
    for callee, callers in edges.items():
        ref = by_name.get(callee)
        if ref is None or windows[ref].empty:
            continue
        caller, edge = max(callers.items(), key=lambda item: (len(item[1].spans), item[0]))
        facts = _pair_facts(windows, by_name, configs, invocations, traces, callee, caller, edge)
        extra = {**windows[ref].extra, "callers": float(len(callers)), **facts}
        evidence = {**windows[ref].evidence, "caller": caller}
        matched = [overhead(s, called[s.span_id]) for s in edge.spans if s.span_id in called]
        if matched:
            hops, own = sum(hop for hop, _ in matched), sum(mine for _, mine in matched)
            extra["invoke_overhead_ms"] = hops / len(matched)
            extra["invoke_overhead_share"] = hops / (hops + own) if hops + own > 0 else 0.0
            extra["own_duration_ms"] = own / len(matched)
        out[ref] = replace(windows[ref], extra=extra, evidence=evidence)
    return out, {callee: frozenset(callers) for callee, callers in edges.items()}


def _pair_facts(
    windows: Mapping[FunctionRef, WindowFacts],
    by_name: Mapping[str, FunctionRef],
    configs: Mapping[str, FunctionConfig],
    invocations: Mapping[str, Sequence[InvocationRecord]],
    traces: Mapping[str, Sequence[Trace]],
    callee: str,
    caller: str,
    edge: _Edge,
) -> dict[str, float]:
    """Rates scaled from the caller's traced share, the caller's figures, the pair's cost."""
    caller_ref, callee_ref = by_name.get(caller), by_name[callee]
    callee_window = windows[callee_ref]
    traced = len(traces.get(caller, ()))
    facts: dict[str, float] = {}
    if caller_ref is None or not traced:
        return facts
    caller_window = windows[caller_ref]
    made = len(edge.spans) * (caller_window.invocations or traced) / traced
    minutes = max(1e-9, (callee_window.end - callee_window.start) / 60)
    facts["calls_per_min"] = made / minutes
    facts["calls_per_caller_invocation"] = len(edge.spans) / traced
    facts["caller_share"] = min(1.0, made / (callee_window.invocations or 1))
    if caller_window.duration_p95_ms is not None:
        facts["caller_p95_ms"] = caller_window.duration_p95_ms
    if caller_window.peak_memory_mb is not None:
        facts["caller_peak_memory_mb"] = caller_window.peak_memory_mb
    caller_config, callee_config = configs.get(caller), configs.get(callee)
    if caller_config is None or callee_config is None:
        return facts
    facts["caller_memory_mb"] = float(caller_config.memory_mb)
    billed = _mb_s(invocations.get(caller, ()), caller_config.memory_mb)
    if not callee_config.fused:  # a fused function's time is billed inside its caller's
        billed += _mb_s(invocations.get(callee, ()), callee_config.memory_mb)
    facts["pair_mb_s_per_call"] = billed / (callee_window.invocations or 1)
    return facts


def _mb_s(invocations: Sequence[InvocationRecord], memory_mb: int) -> float:
    return sum(i.duration_ms for i in invocations) / 1000 * memory_mb
