"""Batched GetMetricData: query plans, call counts on moto, and real percentile responses."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

from aws_world import QUIET_EVERY, REGION, AwsWorld, CallRecorder

from tuner.domain.model import FunctionConfig, FunctionRef, Target
from tuner.providers.aws import AwsProvider
from tuner.providers.aws.facts import window_facts
from tuner.providers.aws.metrics import (
    CORE_METRICS,
    PERCENTILE_METRICS,
    batches,
    parse_results,
    period_for,
    plan_queries,
)

FIXTURE = Path(__file__).parent / "fixtures" / "get_metric_data_p99.json"


def test_core_signals_never_ask_for_percentiles() -> None:
    assert all(not spec.stat.startswith("p") for spec in CORE_METRICS)


def test_queries_are_batched_by_500_with_unique_ids() -> None:
    queries = plan_queries([f"fn-{i}" for i in range(1_200)], CORE_METRICS, {})
    sizes = [len(batch) for batch in batches(queries)]
    assert sizes == [500] * 14 + [200]
    assert len({q.id for q in queries}) == 7_200
    assert all(q.id[0].islower() for q in queries)  # GetMetricData ids start lowercase


def test_the_period_covers_the_window_in_whole_minutes() -> None:
    assert period_for(0, 600) == 600
    assert period_for(0, 601) == 660
    assert period_for(0, 10) == 60


def test_a_recorded_percentile_response_parses_into_facts() -> None:
    pages = json.loads(FIXTURE.read_text())["pages"]
    queries = plan_queries(["resize"], (*CORE_METRICS, *PERCENTILE_METRICS), {})
    results = [r for page in pages for r in page["MetricDataResults"]]

    stats = parse_results(results, queries)["resize"]

    assert stats["invocations"] == 1_602.0
    assert stats["errors"] == 4.0
    assert "throttles" not in stats  # no datapoints is unknown, not zero
    assert stats["duration_avg_ms"] == (231.4 + 219.0) / 2
    assert stats["duration_max_ms"] == 2987.1
    assert stats["duration_p99_ms"] == 2650.0  # the largest over both pages
    ref = FunctionRef("aws", "resize", REGION)
    facts = window_facts(ref, 0.0, 600.0, stats, summary=None)
    assert (facts.duration_p50_ms, facts.duration_p95_ms, facts.duration_p99_ms) == (
        180.2,
        640.5,
        2650.0,
    )
    assert facts.throttles is None
    assert facts.timeouts is None  # logs were not read


def test_a_fleet_of_1200_takes_at_most_one_get_metric_data_call_per_500_queries(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], recorder: CallRecorder
) -> None:
    now = time.time()
    for name in ("fn-0000", "fn-0600", "fn-1199"):
        world.put_metrics(name, now - 120, Invocations=10, Errors=0, Duration=100.0)
    world.put_insights("fn-0600", now - 120, used_memory_max=300.0)
    config = FunctionConfig(memory_mb=512, timeout_s=30)
    targets = [Target(FunctionRef("aws", f"fn-{i:04d}", REGION), config) for i in range(1_200)]
    provider = make_provider(rightsizing_every_cycles=QUIET_EVERY)
    recorder.watch(provider)

    started = time.perf_counter()
    facts = provider.observe(targets, now - 600, now)
    elapsed = time.perf_counter() - started

    queries = 1_200 * len(CORE_METRICS) + 2  # one function reports Lambda Insights
    assert recorder.count("GetMetricData") <= math.ceil(queries / 500)
    assert recorder.count("ListMetrics") == 1
    assert recorder.count("FilterLogEvents") == 0
    assert sorted(ref.name for ref in facts) == ["fn-0000", "fn-0600", "fn-1199"]
    assert facts[FunctionRef("aws", "fn-0600", REGION)].peak_memory_mb == 300.0
    print(f"observed 1,200 functions in {elapsed:.2f} s, {recorder.count('GetMetricData')} calls")
