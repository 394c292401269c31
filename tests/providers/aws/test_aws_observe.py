"""Facts from CloudWatch metrics and Lambda log lines, against moto's server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from aws_world import (
    QUIET_EVERY,
    AwsWorld,
    CallRecorder,
    ok_invocations,
    oom_invocations,
    report_line,
    timed_out_invocations,
)
from proxy import AwsProxy, Injection

from tuner.domain.model import Target, WindowFacts
from tuner.providers.aws import AwsProvider
from tuner.providers.aws.logs import due_for_rightsizing


def build_fleet(world: AwsWorld, when: float) -> None:
    """An OOMing, a timing-out and a healthy function, with their metrics and logs."""
    world.create_function("oom-fn", memory_mb=128, timeout_s=30)
    world.create_function("slow-fn", memory_mb=256, timeout_s=3)
    world.create_function("healthy-fn", memory_mb=512, timeout_s=30)

    world.put_metrics("oom-fn", when, Invocations=50, Errors=3, Duration=850.0, Throttles=0)
    oom_lines = oom_invocations(3, memory_mb=128, duration_ms=850.0)
    oom_lines += [report_line(str(uuid.uuid4()), 400.0, 128, 120, init_ms=310.0)]
    oom_lines += ["REPORT RequestId: broken Duration: ??? ms"]
    world.put_log_lines("oom-fn", when, oom_lines)

    world.put_metrics("slow-fn", when, Invocations=40, Errors=2, Duration=3000.0)
    slow_lines = timed_out_invocations(2, timeout_s=3, memory_mb=256, used_mb=90)
    slow_lines += ok_invocations([1200.0], memory_mb=256, used_mb=88)
    world.put_log_lines("slow-fn", when, slow_lines)

    world.put_metrics("healthy-fn", when, Invocations=100, Errors=0, Duration=210.0)
    world.put_insights("healthy-fn", when, used_memory_max=96.0)
    healthy_lines = ok_invocations([float(d) for d in range(100, 200)], memory_mb=512, used_mb=90)
    world.put_log_lines("healthy-fn", when, healthy_lines)


def observe(provider: AwsProvider) -> tuple[list[Target], dict[str, WindowFacts]]:
    targets = provider.targets()
    end = time.time()
    facts = provider.observe(targets, end - 600, end)
    return targets, {ref.name: f for ref, f in facts.items()}


def test_facts_for_an_ooming_a_timing_out_and_a_healthy_function(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], recorder: CallRecorder
) -> None:
    build_fleet(world, time.time() - 120)
    provider = make_provider(rightsizing_every_cycles=QUIET_EVERY)
    recorder.watch(provider)
    assert not due_for_rightsizing("healthy-fn", 0, QUIET_EVERY)

    _, facts = observe(provider)

    oom = facts["oom-fn"]
    assert (oom.invocations, oom.errors, oom.throttles) == (50, 3, 0)
    assert (oom.ooms, oom.timeouts, oom.cold_starts) == (3, 0, 1)
    assert oom.peak_memory_mb == 128.0
    assert oom.extra["malformed_log_lines"] == 1.0
    assert oom.extra["log_reports"] == 4.0

    slow = facts["slow-fn"]
    assert (slow.invocations, slow.errors, slow.timeouts, slow.ooms) == (40, 2, 2, 0)
    assert slow.duration_max_ms == 3000.0
    assert slow.duration_p50_ms == 3000.0

    healthy = facts["healthy-fn"]
    assert (healthy.invocations, healthy.errors) == (100, 0)
    assert healthy.timeouts is None and healthy.ooms is None  # logs not read: not measured
    assert healthy.peak_memory_mb == 96.0  # from Lambda Insights
    assert healthy.duration_max_ms == 210.0
    assert recorder.count("FilterLogEvents") == 2  # only the flagged functions


def test_functions_due_for_right_sizing_get_their_logs_read(
    world: AwsWorld, make_provider: Callable[..., AwsProvider]
) -> None:
    build_fleet(world, time.time() - 120)
    provider = make_provider(rightsizing_every_cycles=1)

    _, facts = observe(provider)

    healthy = facts["healthy-fn"]
    assert (healthy.timeouts, healthy.ooms, healthy.cold_starts) == (0, 0, 0)
    assert healthy.duration_p50_ms == 149.0
    assert healthy.duration_p95_ms == 194.0
    assert healthy.duration_p99_ms == 198.0
    assert healthy.peak_memory_mb == 96.0  # Insights saw more than the REPORT lines


def test_functions_without_data_are_absent_and_idle_ones_never_read(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], recorder: CallRecorder
) -> None:
    world.create_function("idle-fn")
    world.put_log_lines("idle-fn", time.time() - 60, [report_line("r", 1.0, 128, 40)])
    provider = make_provider(rightsizing_every_cycles=1)
    recorder.watch(provider)

    _, facts = observe(provider)

    assert facts == {}
    assert recorder.count("FilterLogEvents") == 0


def test_an_unreadable_log_group_leaves_log_facts_unknown_and_the_rest_observed(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], proxy: AwsProxy
) -> None:
    build_fleet(world, time.time() - 120)
    denied = proxy.inject(
        Injection(
            "POST",
            "/",
            status=400,
            target="FilterLogEvents",
            body={"__type": "AccessDeniedException", "message": "not authorized"},
        )
    )
    provider = make_provider(endpoint_url=proxy.url, rightsizing_every_cycles=QUIET_EVERY)

    _, facts = observe(provider)

    assert denied.hits == 1
    unread = [name for name, f in facts.items() if f.invocations and f.timeouts is None]
    assert sorted(unread) == ["healthy-fn", "oom-fn"]  # oom-fn denied, healthy-fn not due
    assert facts["slow-fn"].timeouts == 2


def test_log_reads_per_cycle_are_capped_flagged_first(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], recorder: CallRecorder
) -> None:
    build_fleet(world, time.time() - 120)
    provider = make_provider(rightsizing_every_cycles=1, max_log_reads_per_cycle=1)
    recorder.watch(provider)

    _, facts = observe(provider)

    assert recorder.count("FilterLogEvents") == 1
    read = [name for name, f in facts.items() if f.timeouts is not None]
    assert read in (["oom-fn"], ["slow-fn"])
