"""The slow dependency named from the topology: the edge that grew, else the largest share."""

from __future__ import annotations

from tuner.decisions.advice import SLOW_DEPENDENCY_MS, slow_dependency_advice
from tuner.trace.slow_dependency import slow_dependency
from tuner.trace.topology import Edge, Topology


def edge(target: str, p95: float, calls: int, total: float, evidence: str = "trace") -> Edge:
    return Edge("shop", target, calls, p95 / 2, p95, 0.0, 1.0, evidence, total_ms=total)


NOW = Topology((), (edge("catalog-db", 280, 120, 24_000), edge("cache", 300, 10, 3_000)))


def test_without_a_baseline_the_largest_share_is_named() -> None:
    durations = [300.0] * 100  # 30 s in all: catalog-db holds 24 s of it
    text = slow_dependency("shop", durations, NOW, p95_ms=340.0)
    assert text == "p95 340 ms, 80% of it in catalog-db (p95 280 ms over 120 calls, from traces)"


def test_the_edge_whose_latency_grew_is_named_with_its_baseline() -> None:
    before = Topology((), (edge("catalog-db", 280, 100, 20_000), edge("cache", 20, 10, 200)))
    text = slow_dependency("shop", [300.0] * 100, NOW, before)
    assert text.startswith(
        "p95 300 ms, 10% of it in cache (p95 300 ms over 10 calls, up from 20 ms"
    )


def test_timing_evidence_says_so_and_other_sources_are_ignored() -> None:
    mined = Topology(
        (),
        (
            Edge("other", "catalog-db", 5, 1.0, 1.0, 0.0, 1.0, "timing", total_ms=5.0),
            Edge("shop", "catalog-db", 8, 250.0, 290.0, 0.0, 0.9899, "timing", total_ms=2_000.0),
        ),
    )
    text = slow_dependency("shop", [300.0] * 8, mined)
    assert text.endswith("(p95 290 ms over 8 calls, from invocation timing, confidence 0.989)")
    recorded = Topology((), (edge("catalog-db", 290, 8, 2_000.0, evidence="record"),))
    text = slow_dependency("shop", [300.0] * 8, recorded)
    assert text.endswith("(p95 290 ms over 8 calls, from the recorded calls)")
    assert slow_dependency("nobody", [300.0], mined) == ""
    assert slow_dependency("shop", [], mined) == ""


def test_the_advice_carries_it_only_when_a_dependency_is_slow() -> None:
    facts = {"evidence": {"slow_dependency": "p95 340 ms, 80% of it in catalog-db (...)"}}
    [said] = slow_dependency_advice(facts, SLOW_DEPENDENCY_MS + 1)
    assert "80% of it in catalog-db" in said
    assert slow_dependency_advice(facts, SLOW_DEPENDENCY_MS - 1) == []
    assert slow_dependency_advice({}, SLOW_DEPENDENCY_MS + 1) == []
