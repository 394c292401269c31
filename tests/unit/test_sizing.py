"""Sizing memory from evidence: one-step OOM fixes and right-sizing down with a floor and a price."""

from __future__ import annotations

import pytest

from tuner.domain.model import FunctionConfig, Limits
from tuner.engine.actions import LessMemory, MoreMemory
from tuner.engine.sizing import (
    Need,
    monthly_saving,
    oom_evidence,
    payload_need,
    probe_need,
    smallest_in_time,
    steady_need,
    strongest,
    traced_need,
    with_margin,
)

AWS = Limits()
FLAT = Limits(cpu_scales_with_memory=False)


def oom_facts(memory: float, **extra: float) -> dict[str, object]:
    return {"memory_mb": memory, "ooms": 5.0, "invocations": 20.0, "extra": extra}


def oom_need(facts: dict[str, object], memory: float) -> Need | None:
    return strongest(oom_evidence(facts, memory))


def test_payload_model_sizes_for_the_largest_payload_seen_in_the_lookback() -> None:
    facts = oom_facts(
        256,
        memory_mb_per_payload_kb=0.5,
        memory_base_mb=100.0,
        payload_kb_max=1000.0,
        lookback_payload_kb_max=1600.0,
    )
    need = payload_need(facts)
    assert need is not None and need.mb == pytest.approx(100 + 0.5 * 1600)
    assert "1600 KB" in need.basis


def test_a_trace_read_at_the_top_level_as_a_tracing_provider_lifts_it() -> None:
    facts = {
        "memory_mb": 128.0,
        "ooms": 3.0,
        "traced_peak_memory_mb": 190.0,
        "traced_failed_allocation_mb": 176.0,
        "extra": {},
    }
    plan = MoreMemory(margin=0.1).plan(FunctionConfig(memory_mb=128), AWS, facts)
    assert plan.change is not None and plan.change.after == 209
    assert "held 14 MB when 176 MB failed" in plan.summary


def test_a_trace_far_below_the_limit_is_exact_one_near_it_is_a_lower_bound() -> None:
    one_buffer = traced_need(
        oom_facts(512, traced_peak_memory_mb=960.0, traced_failed_allocation_mb=900.0)
    )
    assert one_buffer is not None and one_buffer.mb == 960 and not one_buffer.lower_bound
    growing = traced_need(
        oom_facts(512, traced_peak_memory_mb=508.0, traced_failed_allocation_mb=8.0)
    )
    assert growing is not None and growing.lower_bound


def test_oom_need_prefers_exact_evidence_and_ignores_evidence_below_the_memory() -> None:
    facts = oom_facts(
        256,
        traced_peak_memory_mb=260.0,
        traced_failed_allocation_mb=10.0,  # lower bound
        worker_start_memory_mb=100.0,
        memory_growth_mb_per_invocation=0.5,
        worker_lifetime_invocations=400.0,  # exact, 300
    )
    need = oom_need(facts, 256)
    assert need is not None and need.mb == 300 and "grows" in need.basis
    assert (
        oom_need(
            oom_facts(
                256, memory_mb_per_payload_kb=0.1, memory_base_mb=100.0, payload_kb_max=100.0
            ),
            256,
        )
        is None
    )


def test_a_probe_outweighs_a_trace_of_work_allocated_in_parts() -> None:
    # Killed at 256 MB holding 250 MB of a job allocated in halves: the trace says 380 MB,
    # the probe that re-ran the invocation at 2,048 MB saw it peak at 520 MB.
    facts = oom_facts(
        256,
        traced_peak_memory_mb=380.0,
        traced_failed_allocation_mb=130.0,
        probe_peak_memory_mb=520.0,
        probe_memory_mb=2048.0,
    )
    need = oom_need(facts, 256)
    assert need is not None and need.mb == 520 and not need.lower_bound
    plan = MoreMemory(margin=0.1).plan(FunctionConfig(memory_mb=256), AWS, facts)
    assert plan.change is not None and plan.change.after == 572
    assert "from its probe: needs 520 MB + 10%: a killed invocation re-run at 2048 MB" in (
        plan.summary
    )
    assert plan.summary.endswith("peaked at 520 MB; its trace: at least 380 MB)")


def test_the_summary_says_what_each_size_came_from() -> None:
    config = FunctionConfig(memory_mb=128)
    traced = oom_facts(128, traced_peak_memory_mb=190.0, traced_failed_allocation_mb=176.0)
    assert "(from its trace: needs 190 MB + 10%: a killed invocation held 14 MB" in (
        MoreMemory(margin=0.1).plan(config, AWS, traced).summary
    )
    blind = MoreMemory(margin=0.1).plan(config, AWS, oom_facts(128))
    assert blind.summary == (
        "memory 128 -> 256 MB (blind x2: killed at the limit, and no probe or trace"
        " measured its need)"
    )
    survivors = {**oom_facts(512), "peak_memory_mb": 480.0}
    assert "from the survivors' peak: 480 MB + 10%" in (
        MoreMemory(margin=0.1).plan(FunctionConfig(memory_mb=512), AWS, survivors).summary
    )
    speed = {"memory_mb": 512.0, "ooms": 0.0, "extra": {}}
    faster = MoreMemory(only_if_cpu_scales=True).plan(FunctionConfig(memory_mb=512), AWS, speed)
    assert (
        faster.summary == "memory 512 -> 1024 MB (x2: more memory buys more CPU on this provider)"
    )


def test_a_probe_killed_at_its_own_limit_is_only_a_lower_bound() -> None:
    facts = oom_facts(256, probe_peak_memory_mb=2048.0, probe_memory_mb=2048.0)
    need = probe_need(facts)
    assert need is not None and need.lower_bound
    plan = MoreMemory(margin=0.1, growth=2.0).plan(FunctionConfig(memory_mb=256), AWS, facts)
    assert plan.change is not None and plan.change.after == 2253  # at least the probe's limit


def test_a_probe_carries_a_too_low_payload_model_to_the_largest_payload() -> None:
    # A model fitted to traces of partial allocations says 100 + 0.1 MB/KB; the probe of a
    # 1,000 KB invocation peaked at 400 MB.  With the runtime's memory unknown, the line runs
    # through the model's base: 0.3 MB/KB, 700 MB at 2,000 KB.
    facts = oom_facts(
        256,
        memory_mb_per_payload_kb=0.1,
        memory_base_mb=100.0,
        payload_kb_max=2000.0,
        probe_peak_memory_mb=400.0,
        probe_memory_mb=2048.0,
        probe_payload_kb=1000.0,
    )
    need = oom_need(facts, 256)
    assert need is not None and need.mb == pytest.approx(700.0)
    assert "700 MB at 2000 KB" in need.basis


def test_a_probe_scales_a_model_that_sees_half_of_each_allocation_above_the_runtime() -> None:
    # Truth: 100 MB of runtime + 300 MB of work + 0.2 MB/KB.  A model fitted to half of each
    # allocation says 250 MB + 0.1 MB/KB; the probe of a 1,000 KB invocation peaked at 600 MB.
    # A line through the model's base would say 250 + 0.35 MB/KB: 950 MB at 2,000 KB.
    facts = oom_facts(
        256,
        memory_mb_per_payload_kb=0.1,
        memory_base_mb=250.0,
        payload_kb_max=2000.0,
        probe_peak_memory_mb=600.0,
        probe_memory_mb=10240.0,
        probe_payload_kb=1000.0,
        runtime_memory_mb=100.0,
    )
    need = probe_need(facts)
    assert need is not None
    assert need.mb == pytest.approx(800.0) and need.fixed_mb == pytest.approx(400.0)
    assert "800 MB at 2000 KB" in need.basis


def test_a_probe_below_the_memory_is_no_evidence_of_an_oom_need() -> None:
    # A leaking worker's invocation re-run on a fresh worker fits easily: it tells nothing.
    facts = oom_facts(512, probe_peak_memory_mb=140.0, probe_memory_mb=4096.0)
    assert oom_need(facts, 512) is None


def test_more_memory_fixes_in_one_step_from_the_growth_model() -> None:
    facts = {
        **oom_facts(256, memory_mb_per_payload_kb=0.5, memory_base_mb=100.0, payload_kb_max=2000.0),
        "peak_memory_mb": 250.0,
    }
    plan = MoreMemory(margin=0.2).plan(FunctionConfig(memory_mb=256), AWS, facts)
    # 100 MB the payload does not change, and 1000 MB for 2000 KB with room for 2400 KB
    assert plan.change is not None and plan.change.after == 1300
    assert "needs 1100 MB + 20% of its growing part" in plan.summary
    assert "2000 KB" in plan.summary


def test_the_margin_is_kept_over_what_grows_and_over_all_of_a_bare_peak() -> None:
    leak = steady(
        2048,
        900.0,
        worker_start_memory_mb=800.0,
        memory_growth_mb_per_invocation=0.1,
        worker_lifetime_invocations=1000.0,
    )
    need = steady_need(leak)
    assert need is not None and need.mb == 900 and need.fixed_mb == 800
    assert with_margin(need, 0.1) == pytest.approx(910)  # a worker may grow 10% more
    plan = LessMemory(margin=0.1).plan(FunctionConfig(memory_mb=2048), FLAT, leak)
    assert plan.change is not None and plan.change.after == 910
    assert "+ 10% of its growing part" in plan.summary
    bare = steady(2048, 900.0, lookback_peak_memory_mb=900.0)  # nothing says what is fixed
    plan = LessMemory(margin=0.1).plan(FunctionConfig(memory_mb=2048), FLAT, bare)
    assert plan.change is not None and plan.change.after == 990
    # A peak above what the model says is the need, with the margin over all of it.
    above = steady(
        2048,
        950.0,
        worker_start_memory_mb=800.0,
        memory_growth_mb_per_invocation=0.1,
        worker_lifetime_invocations=1000.0,
    )
    need = steady_need(above)
    assert need is not None and need.fixed_mb == 0 and with_margin(need, 0.1) == 1045


def test_more_memory_from_a_growing_trace_takes_at_least_the_growth_factor() -> None:
    facts = oom_facts(256, traced_peak_memory_mb=280.0, traced_failed_allocation_mb=30.0)
    plan = MoreMemory(margin=0.2, growth=2.0).plan(FunctionConfig(memory_mb=256), AWS, facts)
    assert plan.change is not None and plan.change.after == 512
    assert "still growing" in plan.summary


def test_more_memory_without_ooms_keeps_the_speed_path() -> None:
    facts = {"memory_mb": 512.0, "ooms": 0.0, "peak_memory_mb": 100.0, "extra": {}}
    plan = MoreMemory(only_if_cpu_scales=True).plan(FunctionConfig(memory_mb=512), AWS, facts)
    assert plan.change is not None and plan.change.after == 1024


def steady(memory: float, peak: float, **extra: float) -> dict[str, object]:
    return {
        "memory_mb": memory,
        "ooms": 0.0,
        "peak_memory_mb": peak,
        "invocations": 900.0,
        "window_s": 900.0,
        "duration_p50_ms": 200.0,
        "duration_max_ms": 400.0,
        "timeout_ms": 30_000.0,
        "cpu_scales_with_memory": True,
        "extra": extra,
    }


def test_less_memory_never_goes_below_the_largest_peak_of_the_lookback() -> None:
    facts = steady(2048, 300.0, lookback_peak_memory_mb=700.0, lookback_days=14.0)
    plan = LessMemory(margin=0.1).plan(FunctionConfig(memory_mb=2048), FLAT, facts)
    assert plan.change is not None and plan.change.after == 770
    assert "peak 700 MB over 14 days" in plan.summary


def test_less_memory_states_the_saving_in_dollars() -> None:
    facts = steady(2048, 300.0, price_gb_s=0.00001)
    plan = LessMemory(margin=0.3).plan(FunctionConfig(memory_mb=2048), FLAT, facts)
    assert plan.change is not None
    # 1 invocation/s for 30 days, 0.2 s each, (2048 - 390) MB at $0.00001 per GB-s
    expected = 86_400 * 30 * 0.2 * (2048 - 390) / 1024 * 0.00001
    assert f"${expected:,.2f} a month" in plan.summary


def test_less_memory_keeps_a_cpu_bound_function_within_its_slowdown() -> None:
    # 1000 ms on CPU at one vCPU (3008 MB), 100 ms waiting: halving the CPU would double the time.
    facts = steady(3008, 200.0, cpu_time_ms=1000.0, duration_avg_ms=1100.0)
    floor = smallest_in_time(facts, 1.2, cpu_scales=True)
    assert floor is not None and floor[0] == pytest.approx(1000 / (1.2 * 1100 - 100) * 1769)
    plan = LessMemory(margin=0.3, max_slowdown=1.2).plan(FunctionConfig(memory_mb=3008), AWS, facts)
    assert plan.change is not None and plan.change.after == pytest.approx(floor[0], abs=1)
    assert "slows at most" in plan.summary
    near_one_vcpu = steady(1900, 200.0, cpu_time_ms=1000.0, duration_avg_ms=1100.0)
    strict = LessMemory(margin=0.3, max_slowdown=1.0).plan(
        FunctionConfig(memory_mb=1900), AWS, near_one_vcpu
    )
    assert not strict.applicable and "would slow it" in strict.reason


def test_a_slow_cold_start_near_the_timeout_still_lets_memory_above_one_vcpu_go() -> None:
    # A 4.5 s init at one vCPU: the longest invocation, 7.2 s, is over 80% of the 8 s
    # timeout already; 6464 MB runs no faster than 1769 MB, so that much may go.
    facts = {
        **steady(6464, 1620.0, cpu_time_ms=82.0, duration_avg_ms=1491.0),
        "duration_max_ms": 7183.0,
        "timeout_ms": 8000.0,
    }
    floor = smallest_in_time(facts, 1.3, cpu_scales=True)
    assert floor is not None and floor[0] == pytest.approx(1769.0)
    plan = LessMemory(margin=0.1, min_saving=0.1).plan(FunctionConfig(memory_mb=6464), AWS, facts)
    assert plan.change is not None and plan.change.after == 1782  # the 1,620 MB peak + 10%
    below_one_vcpu = {**facts, "memory_mb": 1200.0}
    floor = smallest_in_time(below_one_vcpu, 1.3, cpu_scales=True)
    assert floor is not None and floor[0] == pytest.approx(1200.0)  # any less: slower still


def test_successive_right_sizings_do_not_compound_their_slowdown() -> None:
    # Lowered once already: 1,320 ms today, 1,100 ms at its fastest in the lookback (x1.2).
    once = steady(1500, 200.0, cpu_time_ms=1000.0, duration_avg_ms=1320.0)
    assert (
        LessMemory(margin=0.3, min_saving=0.1)
        .plan(FunctionConfig(memory_mb=1500), AWS, once)
        .change
    )
    facts = {**once, "extra": {**once["extra"], "lookback_duration_avg_ms_min": 1100.0}}
    again = LessMemory(margin=0.3, min_saving=0.1).plan(FunctionConfig(memory_mb=1500), AWS, facts)
    assert again.change is None and "would slow it" in again.reason


def test_less_memory_refuses_when_the_smaller_size_costs_no_less() -> None:
    facts = steady(1769, 200.0, cpu_time_ms=1000.0, duration_avg_ms=1000.0)
    plan = LessMemory(margin=0.3, max_slowdown=4.0).plan(FunctionConfig(memory_mb=1769), AWS, facts)
    assert not plan.applicable and "no saving" in plan.reason


def test_less_memory_never_while_running_out_of_memory() -> None:
    facts = {**steady(2048, 300.0), "ooms": 1.0}
    plan = LessMemory().plan(FunctionConfig(memory_mb=2048), FLAT, facts)
    assert not plan.applicable and "out of memory" in plan.reason


def test_steady_need_is_the_largest_evidence() -> None:
    facts = steady(
        1024, 300.0, memory_mb_per_payload_kb=0.1, memory_base_mb=200.0, payload_kb_max=2000.0
    )
    need = steady_need(facts)
    assert need is not None and need.mb == 400


def test_monthly_saving_prices_the_longer_duration_where_cpu_scales() -> None:
    facts = steady(1769, 200.0, cpu_time_ms=500.0, duration_avg_ms=1000.0, price_gb_s=1.0)
    flat = monthly_saving({**facts, "cpu_scales_with_memory": False}, 1769, 884.5)
    scaled = monthly_saving(facts, 1769, 884.5)
    assert flat is not None and scaled is not None and 0 < scaled < flat
    # at half the memory: 500 ms waiting + 1000 ms on CPU = 1.5 s, so 0.75 of the GB-s
    assert scaled == pytest.approx(flat * 0.5)
