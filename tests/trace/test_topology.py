"""Topology from records, timing and traces: who may call, what traces rule out, how it reads."""

from __future__ import annotations

import json

from tuner.mining.timing import Interval
from tuner.trace.topology import (
    Edge,
    Node,
    RecordedCall,
    Topology,
    from_records,
    from_timing,
    merge,
    refuted,
    to_dot,
)


def timing_edge(source: str, target: str, calls: int, confidence: float = 0.95) -> Edge:
    return Edge(source, target, calls, 5.0, 9.0, 0.0, confidence, "timing", total_ms=calls * 5.0)


def traced_edge(source: str, target: str) -> Edge:
    return Edge(source, target, 3, 5.0, 9.0, 0.0, 1.0, "trace", total_ms=15.0)


def test_recorded_dependency_calls_are_exact_edges() -> None:
    calls = [RecordedCall("shop", "db", 10.0 * i, failed=i == 3) for i in range(1, 5)]
    calls.append(RecordedCall("cart", "db", 1.0, failed=False))
    topology = from_records(calls)
    assert {(n.id, n.kind) for n in topology.nodes} == {
        ("shop", "function"),
        ("cart", "function"),
        ("db", "dependency"),
    }
    shop = topology.edge("shop", "db")
    assert shop is not None and shop.calls == 4 and shop.error_rate == 0.25
    assert shop.evidence == "record" and shop.confidence == 1.0 and shop.total_ms == 100.0


def test_timing_never_makes_a_dependency_a_caller() -> None:
    intervals = []
    for i in range(60):
        start = i * 1.7
        intervals.append(Interval("db", start, start + 1.0))  # a long call ...
        intervals.append(Interval("job", start + 0.2, start + 0.25))  # ... always holds job
    assert from_timing(intervals, {}).edge("db", "job") is not None  # kinds unknown: it calls
    topology = from_timing(intervals, {"db": "dependency"})
    assert topology.edges == () and ("db", "dependency") in {(n.id, n.kind) for n in topology.nodes}


def test_traces_rule_out_a_timing_edge_they_would_have_shown() -> None:
    traced = Topology((Node("a", "function"),), (traced_edge("a", "db"),))
    mined = Topology((), (timing_edge("a", "b", 40), timing_edge("c", "b", 40)))
    # a made the call in half of its 80 invocations, says timing; 8 traces of a without it
    # would happen once in 256 times: ruled out.  c has no traces: timing speaks for it.
    merged = merge(traced, mined, {"a": (8, 80)})
    assert {(e.source, e.target) for e in merged.edges} == {("a", "db"), ("c", "b")}
    assert refuted(timing_edge("a", "b", 40), 80, 8)
    assert not refuted(timing_edge("a", "b", 40), 80, 2)  # two traces could miss it
    assert not refuted(timing_edge("a", "b", 2), 80, 8)  # a rare call: 8 traces could miss it
    assert not refuted(timing_edge("a", "b", 40), 80, 0)


def test_a_traced_edge_wins_over_the_same_edge_from_timing() -> None:
    merged = merge(
        Topology((), (traced_edge("a", "b"),)), Topology((), (timing_edge("a", "b", 40),))
    )
    assert [(e.evidence, e.confidence) for e in merged.edges] == [("trace", 1.0)]


def test_timing_edges_are_drawn_apart_and_never_read_as_certain() -> None:
    topology = Topology(
        (Node("a", "function"), Node("b", "function"), Node("db", "dependency")),
        (timing_edge("a", "b", 40, confidence=0.9996), traced_edge("a", "db")),
    )
    dot = to_dot(topology)
    [timing_line] = [line for line in dot.splitlines() if '"a" -> "b"' in line]
    assert "style=dashed" in timing_line and "gray" in timing_line
    assert "timing, confidence 0.99" in timing_line  # rounded down, not up to 1.00
    [traced_line] = [line for line in dot.splitlines() if '"a" -> "db"' in line]
    assert "style=solid" in traced_line and "confidence" not in traced_line
    shown = {(e["source"], e["target"]): e for e in topology.as_json()["edges"]}
    assert shown[("a", "b")]["confidence"] == 0.9996 < 1.0
    assert json.dumps(shown[("a", "db")]["confidence"]) == "1.0"
