"""The application's topology: precise from traces and records, heuristic from timing.

Nodes are functions and dependencies; an edge says who calls whom, how often, how fast
(p50/p95 in ms) and how often it fails, with its evidence and a confidence:

- ``trace``: seen in traces (confidence 1);
- ``record``: a dependency call the host recorded with the function that made it
  (confidence 1);
- ``timing``: inferred from when invocations ran (:mod:`tuner.mining.timing`), with the
  calibrated chance that it is real, always below 1; only a function calls, and timing
  speaks for a function only where its traces cannot (:func:`merge`).

Output as JSON, Graphviz DOT (timing edges dashed and grey, with their confidence), or
SVG through Graphviz's ``dot`` where it is installed.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tuner.domain.stats import percentile
from tuner.mining.timing import Interval, mine
from tuner.trace.model import Trace


@dataclass(frozen=True, slots=True)
class Node:
    """A function or a dependency."""

    id: str
    kind: str
    """``function`` or ``dependency``."""


@dataclass(frozen=True, slots=True)
class Edge:
    """``source`` calls ``target``."""

    source: str
    target: str
    calls: int
    p50_ms: float | None
    p95_ms: float | None
    error_rate: float | None
    confidence: float
    evidence: str
    """``trace``, ``record`` or ``timing``."""
    total_ms: float | None = None
    """The time spent in these calls, summed (not in the JSON output)."""


@dataclass(frozen=True, slots=True)
class Topology:
    """Nodes and edges of an application."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def as_json(self) -> dict[str, Any]:
        """``{"nodes": [{"id", "kind"}], "edges": [{"source", "target", "calls", ...}]}``."""
        return {
            "nodes": [{"id": n.id, "kind": n.kind} for n in self.nodes],
            "edges": [
                {
                    "source": e.source,
                    "target": e.target,
                    "calls": e.calls,
                    "p50_ms": _round(e.p50_ms),
                    "p95_ms": _round(e.p95_ms),
                    "error_rate": _round(e.error_rate, 4),
                    "confidence": shown_confidence(e, 4),
                    "evidence": e.evidence,
                }
                for e in self.edges
            ],
        }

    def edge(self, source: str, target: str) -> Edge | None:
        """The edge from ``source`` to ``target``, if there is one."""
        return next((e for e in self.edges if e.source == source and e.target == target), None)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def shown_confidence(edge: Edge, digits: int) -> float:
    """The edge's confidence to ``digits`` decimals, rounded down for an inferred edge
    (so that 0.996 from timing never reads as a certain 1.00)."""
    scale = 10.0**digits
    if edge.evidence == "timing":
        return math.floor(edge.confidence * scale) / scale
    return round(edge.confidence, digits)


def _edge(
    source: str,
    target: str,
    latencies: Sequence[float],
    errors: int,
    confidence: float,
    evidence: str,
) -> Edge:
    return Edge(
        source=source,
        target=target,
        calls=len(latencies),
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        error_rate=errors / len(latencies) if latencies else None,
        confidence=confidence,
        evidence=evidence,
        total_ms=sum(latencies),
    )


def from_traces(traces: Iterable[Trace]) -> Topology:
    """The precise topology: every dependency and nested-function span of the traces."""
    kinds: dict[str, str] = {}
    latencies: dict[tuple[str, str], list[float]] = defaultdict(list)
    errors: dict[tuple[str, str], int] = defaultdict(int)
    for trace in traces:
        kinds[trace.function] = "function"
        for span in trace.spans:
            if span.kind == "dependency":
                target = str(span.attributes.get("peer.service", span.name))
                kinds.setdefault(target, "dependency")
            elif span.kind == "invoke":
                target = str(span.attributes.get("faas.invoked_name", span.name))
                kinds[target] = "function"
            else:
                continue
            key = (trace.function, target)
            latencies[key].append(span.duration_ms)
            errors[key] += 1 if span.error else 0
    edges = [
        _edge(s, t, latencies[(s, t)], errors[(s, t)], 1.0, "trace") for s, t in sorted(latencies)
    ]
    return Topology(tuple(Node(n, k) for n, k in sorted(kinds.items())), tuple(edges))


def from_timing(intervals: Sequence[Interval], kinds: dict[str, str], **options: Any) -> Topology:
    """The heuristic topology: edges the invocation timing supports (see the miner).

    Only functions call: nodes of another kind in ``kinds`` are never a source.
    """
    nodes = {i.node for i in intervals}
    callers = {n for n in nodes if kinds.get(n, "function") == "function"}
    mined = mine(intervals, callers=callers, **options)
    edges = [
        _edge(e.source, e.target, e.durations_ms, e.errors, e.confidence, "timing") for e in mined
    ]
    return Topology(
        tuple(Node(n, kinds.get(n, "function")) for n in sorted(nodes)),
        tuple(sorted(edges, key=lambda e: (e.source, e.target))),
    )


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """A dependency call as the host recorded it, with the function that made it."""

    function: str
    dependency: str
    latency_ms: float
    failed: bool


def from_records(calls: Iterable[RecordedCall]) -> Topology:
    """The dependency calls the host recorded: exact edges (evidence ``record``)."""
    latencies: dict[tuple[str, str], list[float]] = defaultdict(list)
    errors: dict[tuple[str, str], int] = defaultdict(int)
    for call in calls:
        latencies[(call.function, call.dependency)].append(call.latency_ms)
        errors[(call.function, call.dependency)] += 1 if call.failed else 0
    kinds = {s: "function" for s, _ in latencies} | {t: "dependency" for _, t in latencies}
    edges = [_edge(s, t, v, errors[(s, t)], 1.0, "record") for (s, t), v in latencies.items()]
    return Topology(
        tuple(Node(n, k) for n, k in sorted(kinds.items())),
        tuple(sorted(edges, key=lambda e: (e.source, e.target))),
    )


REFUTED_BELOW = 0.05
"""A timing edge is dropped when its source's traces would show it but for this chance."""


def refuted(edge: Edge, invocations: int, traced: int) -> bool:
    """Whether ``traced`` invocations of the edge's source, none of which made the call, rule
    out an edge that timing puts in ``edge.calls`` of its ``invocations``.

    Had the source made the call that often, traces without it would be rarer than
    :data:`REFUTED_BELOW`: the observed requests contradict the timing.
    """
    if traced <= 0 or invocations <= 0:
        return False
    share = min(1.0, edge.calls / invocations)
    return (1.0 - share) ** traced < REFUTED_BELOW


def merge(
    precise: Topology,
    heuristic: Topology,
    counts: Mapping[str, tuple[int, int]] | None = None,
) -> Topology:
    """Traced edges first, then the others the traces do not contradict.

    ``counts`` gives each function's (traced, all) invocations over the same time: a
    timing edge from a function whose traces rule it out (:func:`refuted`) is dropped.
    """
    nodes = {n.id: n for n in heuristic.nodes}
    nodes.update({n.id: n for n in precise.nodes})
    seen = {(e.source, e.target) for e in precise.edges}
    edges = list(precise.edges)
    for edge in heuristic.edges:
        if (edge.source, edge.target) in seen:
            continue
        traced, invocations = (counts or {}).get(edge.source, (0, 0))
        if edge.evidence == "timing" and refuted(edge, invocations, traced):
            continue
        edges.append(edge)
    return Topology(
        tuple(nodes[k] for k in sorted(nodes)),
        tuple(sorted(edges, key=lambda e: (e.source, e.target))),
    )


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(topology: Topology, name: str = "topology") -> str:
    """Graphviz DOT: functions as boxes, dependencies as cylinders, edges labelled."""
    lines = [
        f"digraph {_quote(name)} {{",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for node in topology.nodes:
        shape = "cylinder" if node.kind == "dependency" else "box"
        lines.append(f"  {_quote(node.id)} [shape={shape}, style=rounded];")
    for e in topology.edges:
        parts = [f"{e.calls} calls"]
        if e.p50_ms is not None and e.p95_ms is not None:
            parts.append(f"p50 {e.p50_ms:.0f} ms, p95 {e.p95_ms:.0f} ms")
        if e.error_rate:
            parts.append(f"{e.error_rate:.0%} errors")
        timing = e.evidence == "timing"
        if timing:
            parts.append(f"timing, confidence {shown_confidence(e, 2):.2f}")
        style = "dashed" if timing else "solid"
        colour = "firebrick" if (e.error_rate or 0) >= 0.5 else "gray45" if timing else "black"
        label = "\\n".join(parts)
        lines.append(
            f"  {_quote(e.source)} -> {_quote(e.target)} "
            f'[label="{label}", style={style}, color={colour}];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


class GraphvizMissingError(RuntimeError):
    """Graphviz's ``dot`` is not installed (Debian: ``apt-get install graphviz``)."""


def to_svg(topology: Topology, dot_binary: str = "dot") -> str:
    """The topology drawn by Graphviz as SVG; GraphvizMissingError without ``dot``."""
    path = shutil.which(dot_binary)
    if path is None:
        raise GraphvizMissingError(
            "Graphviz's dot is not installed (Debian: apt-get install graphviz); "
            "use --format dot or json"
        )
    result = subprocess.run(
        [path, "-Tsvg"],
        input=to_dot(topology),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout
