"""Decisions from traced evidence: memory sized from the traced need, advice that names code."""

from __future__ import annotations

from tuner.decisions.advice import traced_advice
from tuner.domain.model import FunctionConfig, Limits
from tuner.engine.actions import MoreMemory

LOCAL = Limits(memory_min_mb=64, memory_max_mb=4096, cpu_scales_with_memory=False)
KILLED_AT_LIMIT = {"peak_memory_mb": 128.0, "ooms": 3.0}


def test_memory_is_sized_from_the_traced_need_not_doubled() -> None:
    plan = MoreMemory(margin=0.2).plan(
        FunctionConfig(memory_mb=128), LOCAL, {**KILLED_AT_LIMIT, "traced_peak_memory_mb": 190.0}
    )
    assert plan.change is not None and plan.change.after == 228
    assert "traced need of 190 MB" in plan.summary


def test_without_a_trace_memory_still_grows_geometrically() -> None:
    plan = MoreMemory(margin=0.2).plan(FunctionConfig(memory_mb=128), LOCAL, KILLED_AT_LIMIT)
    assert plan.change is not None and plan.change.after == 256


def test_a_traced_peak_below_the_limit_says_nothing_about_the_failures() -> None:
    facts = {**KILLED_AT_LIMIT, "traced_peak_memory_mb": 40.0}  # a small traced success
    plan = MoreMemory(margin=0.2).plan(FunctionConfig(memory_mb=128), LOCAL, facts)
    assert plan.change is not None and plan.change.after == 256


def test_the_traced_need_is_capped() -> None:
    plan = MoreMemory(max_mb=200).plan(
        FunctionConfig(memory_mb=128), LOCAL, {**KILLED_AT_LIMIT, "traced_peak_memory_mb": 900.0}
    )
    assert plan.change is not None and plan.change.after == 200


def test_advice_names_the_hot_path_and_the_allocation_site() -> None:
    facts = {
        "function": "report-builder",
        "ooms": 2.0,
        "timeouts": 1.0,
        "traced_peak_memory_mb": 190.0,
        "evidence": {
            "hot_path": "78% of the time in catalog-db.get, called from handler.py:12 (trace ab)",
            "allocation_site": "MemoryError: bytearray of 176 MB at handler.py:8 (grows with pages)",
            "allocation_grows_with": "pages",
        },
    }
    hot, memory = traced_advice(facts)
    assert hot == (
        "Traced: 78% of the time in catalog-db.get, called from handler.py:12 (trace ab). "
        "Flame graph: tuner profile report-builder."
    )
    assert "bytearray of 176 MB at handler.py:8" in memory
    assert "The trace saw a peak of 190 MB." in memory and "fan out by pages" in memory
    assert "tuner profile report-builder --kind memory" in memory


def test_no_evidence_or_no_problem_gives_no_advice() -> None:
    assert traced_advice({"function": "f", "ooms": 1.0, "evidence": {}}) == []
    quiet = {"function": "f", "ooms": 0.0, "timeouts": 0.0, "evidence": {"hot_path": "x"}}
    assert traced_advice(quiet) == []
