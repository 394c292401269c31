"""Shape actions and proposals: fuse a chatty pair, split a path, read a near replica."""

from __future__ import annotations

from typing import Any

import pytest

from tuner.decisions.shape_advice import shape_proposals
from tuner.domain.model import Change, FunctionConfig, Knob, Limits
from tuner.engine.actions import Fuse, NearReplica, SplitPath
from tuner.engine.actions.shaping import fusion_estimate

LOCAL = Limits(memory_min_mb=64, memory_max_mb=4096, timeout_max_s=300)


def chatty(**extra: float) -> dict[str, Any]:
    """The facts of a private function its one caller calls 1,200 times a minute."""
    return {
        "function": "sharpen",
        "memory_mb": 128.0,
        "peak_memory_mb": 20.0,
        "extra": {
            "callers": 1.0,
            "caller_share": 1.0,
            "calls_per_min": 1200.0,
            "calls_per_caller_invocation": 10.0,
            "invoke_overhead_ms": 2.0,
            "invoke_overhead_share": 0.8,
            "own_duration_ms": 0.5,
            "caller_memory_mb": 256.0,
            "caller_peak_memory_mb": 100.0,
            "caller_p95_ms": 150.0,
            **extra,
        },
        "evidence": {"caller": "resize"},
    }


def test_a_private_chatty_function_is_fused_into_its_caller_with_the_figures() -> None:
    plan = Fuse().plan(FunctionConfig(memory_mb=128, fused=0), LOCAL, chatty())

    assert plan.change == Change(Knob.FUSED, 0, 1)
    assert plan.summary.startswith("fuse into resize: 1,200 calls/min, 2.0 ms overhead per call")
    assert "(80% of the call)" in plan.summary
    assert "resize p95 150 -> ~130 ms" in plan.summary  # 10 calls of 2 ms each saved


def test_the_estimate_counts_the_callers_wait_and_the_callees_own_bill() -> None:
    estimate = fusion_estimate(chatty(), 128)

    assert estimate is not None
    # per call: 2 ms of the caller's 256 MB waiting, 0.5 ms of the callee's 128 MB
    assert estimate.mb_s_per_call_saved == pytest.approx((2.0 * 256 + 0.5 * 128) / 1000)
    per_minute = 1200 * (0.576 / 1024 * 0.0000166667 + 0.2e-6)
    assert estimate.dollars_per_month == pytest.approx(per_minute * 30 * 24 * 60)


@pytest.mark.parametrize(
    ("config", "facts", "reason"),
    [
        (FunctionConfig(memory_mb=128), chatty(), "this provider cannot fuse"),
        (FunctionConfig(memory_mb=128, fused=1), chatty(), "runs inside its caller already"),
        (FunctionConfig(memory_mb=128, fused=0), chatty(callers=2.0), "2 callers"),
        (FunctionConfig(memory_mb=128, fused=0), chatty(caller_share=0.5), "from outside too"),
        # 100 + 150 MB of peaks would take more than 90% of the caller's 256 MB
        (
            FunctionConfig(memory_mb=128, fused=0),
            {**chatty(caller_peak_memory_mb=100.0), "peak_memory_mb": 150.0},
            "would need about 250 MB",
        ),
    ],
)
def test_a_fusion_is_not_planned_where_it_cannot_or_should_not_be(
    config: FunctionConfig, facts: dict[str, Any], reason: str
) -> None:
    plan = Fuse().plan(config, LOCAL, facts)

    assert plan.change is None
    assert reason in plan.reason


def test_elsewhere_the_proposal_names_the_pair_the_figures_and_the_memory_it_needs() -> None:
    facts = {**chatty(caller_peak_memory_mb=200.0), "peak_memory_mb": 40.0}

    [proposal] = shape_proposals(facts, None)

    assert proposal.startswith("Fuse sharpen into resize, its only caller (resize -> sharpen)")
    assert "1,200 calls/min, 2.0 ms overhead per call" in proposal
    assert "Fused, resize needs about 264 MB (it has 256 MB)." in proposal
    assert shape_proposals(facts, Change(Knob.FUSED, 0, 1)) == []  # the change does it
    assert shape_proposals(chatty(invoke_overhead_share=0.3), None) == []


def test_a_memory_path_proposal_names_the_path_and_its_saving_against_more_memory() -> None:
    facts = {
        "extra": {
            "memory_path_share": 0.8,
            "memory_path_mb": 400.0,
            "memory_rest_mb": 100.0,
            "memory_path_invocations_share": 0.1,
        },
        "evidence": {"memory_path": "render (handler.py:42)"},
    }

    [proposal] = shape_proposals(facts, None)

    # whole: 550 MB for every invocation; split: 110 MB, and 440 MB for a tenth of them
    assert proposal.startswith("render (handler.py:42) holds 400 MB (80%) of the peak")
    assert "in 10% of the invocations; the rest need 100 MB" in proposal
    assert "about 440 MB: about 72% less memory-time than giving the whole function 550 MB" in (
        proposal
    )


def test_a_fused_function_holding_its_callers_peak_is_split_out_again() -> None:
    facts = {
        "extra": {"fused_memory_share": 0.7, "fused_memory_mb": 300.0},
        "evidence": {"caller": "upload"},
    }

    plan = SplitPath().plan(FunctionConfig(memory_mb=512, fused=1), LOCAL, facts)
    kept = SplitPath().plan(
        FunctionConfig(memory_mb=512, fused=1), LOCAL, {"extra": {"fused_memory_share": 0.4}}
    )
    own = SplitPath().plan(FunctionConfig(memory_mb=512, fused=0), LOCAL, facts)

    assert plan.change == Change(Knob.FUSED, 1, 0)
    assert "held 300 MB (70%) of upload's peak" in plan.summary
    assert kept.change is None and "40%" in kept.reason
    assert own.change is None and "part of the function's own code" in own.reason


def test_a_near_replica_is_read_only_where_one_is_declared_nearer() -> None:
    facts = {
        "dependency_latency_p95_ms": 65.0,
        "extra": {"dependency_distance_ms": 50.0, "replica_distance_ms": 1.0},
        "evidence": {"nearest_replica": "search-db-replica"},
    }
    none_nearer = {**facts, "evidence": {}}

    plan = NearReplica().plan(FunctionConfig(memory_mb=128, near_replica=0), LOCAL, facts)
    missing = NearReplica().plan(FunctionConfig(memory_mb=128, near_replica=0), LOCAL, none_nearer)

    assert plan.change == Change(Knob.NEAR_REPLICA, 0, 1)
    assert (
        plan.summary == "read from search-db-replica (1 ms away instead of 50 ms): p95 65 -> ~16 ms"
    )
    assert missing.change is None and "no replica nearer" in missing.reason
