"""Which dependency holds a function's time, read from the topology: one sentence for advice.

Given the function's invocation durations and a topology of the same window (from traces
when there are any, else from the host's records of dependency calls, or from timing), the dependency named is the one whose p95 grew the
most since a baseline window; without a baseline (or when none grew) the one that holds
the largest share of the function's time.  For example ``p95 340 ms, 81% of it in
catalog-db (p95 280 ms over 120 calls, from traces)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from tuner.domain.stats import percentile
from tuner.trace.topology import Edge, Topology, shown_confidence


def _grown(edge: Edge, baseline: Topology | None) -> float:
    before = baseline.edge(edge.source, edge.target) if baseline else None
    if before is None or before.p95_ms is None or edge.p95_ms is None:
        return 0.0
    return edge.p95_ms - before.p95_ms


def slow_dependency(
    function: str,
    durations_ms: Sequence[float],
    topology: Topology,
    baseline: Topology | None = None,
    p95_ms: float | None = None,
) -> str:
    """The sentence naming the dependency that holds the function's time, or ''.

    ``durations_ms`` are those of the invocations the topology covers (the traced ones,
    for a topology from traces); ``p95_ms``, the function's p95 over all of them, is
    shown instead of theirs when given.
    """
    total = sum(durations_ms)
    edges = [
        e for e in topology.edges if e.source == function and e.total_ms and e.p95_ms is not None
    ]
    if not edges or total <= 0:
        return ""
    grown = [e for e in edges if _grown(e, baseline) > 0]
    if grown:
        edge = max(grown, key=lambda e: _grown(e, baseline))
    else:
        edge = max(edges, key=lambda e: e.total_ms or 0.0)
    share = min(1.0, (edge.total_ms or 0.0) / total)
    p95 = p95_ms if p95_ms is not None else percentile(durations_ms, 95) or 0.0
    before = baseline.edge(edge.source, edge.target) if baseline and grown else None
    up = f", up from {before.p95_ms:.0f} ms" if before and before.p95_ms is not None else ""
    source = {"trace": "from traces", "record": "from the recorded calls"}.get(
        edge.evidence, f"from invocation timing, confidence {shown_confidence(edge, 3):.3f}"
    )
    return (
        f"p95 {p95:.0f} ms, {share:.0%} of it in {edge.target} "
        f"(p95 {edge.p95_ms:.0f} ms over {edge.calls} calls{up}, {source})"
    )
