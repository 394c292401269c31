"""CloudWatch metrics of Lambda functions, fetched for a whole fleet in few GetMetricData calls.

Every (function, metric, statistic) is one query; queries go out in batches of 500, the
most one GetMetricData call accepts.  Only Sum, Average and Maximum are needed for the
core signals; percentiles are optional because not every CloudWatch implementation
serves them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

log = structlog.get_logger(__name__)

MAX_QUERIES_PER_CALL = 500
LAMBDA_NAMESPACE = "AWS/Lambda"
INSIGHTS_NAMESPACE = "LambdaInsights"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One statistic of one metric, stored under ``key`` in a function's stats."""

    key: str
    metric: str
    stat: str
    namespace: str = LAMBDA_NAMESPACE
    dimension: str = "FunctionName"


CORE_METRICS = (
    MetricSpec("invocations", "Invocations", "Sum"),
    MetricSpec("errors", "Errors", "Sum"),
    MetricSpec("throttles", "Throttles", "Sum"),
    MetricSpec("duration_avg_ms", "Duration", "Average"),
    MetricSpec("duration_max_ms", "Duration", "Maximum"),
    MetricSpec("concurrent_executions_max", "ConcurrentExecutions", "Maximum"),
)
PERCENTILE_METRICS = (
    MetricSpec("duration_p50_ms", "Duration", "p50"),
    MetricSpec("duration_p95_ms", "Duration", "p95"),
    MetricSpec("duration_p99_ms", "Duration", "p99"),
)
INSIGHTS_METRICS = (
    MetricSpec(
        "memory_utilization_pct",
        "memory_utilization",
        "Maximum",
        INSIGHTS_NAMESPACE,
        "function_name",
    ),
    MetricSpec(
        "used_memory_max_mb", "used_memory_max", "Maximum", INSIGHTS_NAMESPACE, "function_name"
    ),
)

FunctionStats = Mapping[str, float]
"""A function's statistics by :attr:`MetricSpec.key`; a key without data is absent."""


@dataclass(frozen=True, slots=True)
class Query:
    """One GetMetricData query: which function and which statistic, under an id."""

    id: str
    function: str
    spec: MetricSpec

    def request(self, period: int) -> dict[str, Any]:
        """The query as GetMetricData expects it."""
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.spec.namespace,
                    "MetricName": self.spec.metric,
                    "Dimensions": [{"Name": self.spec.dimension, "Value": self.function}],
                },
                "Period": period,
                "Stat": self.spec.stat,
            },
            "ReturnData": True,
        }


def plan_queries(
    functions: Iterable[str], specs: Sequence[MetricSpec], extra: Mapping[str, Sequence[MetricSpec]]
) -> list[Query]:
    """One query per function and spec, plus ``extra[function]`` specs, with ids q0, q1, ..."""
    queries: list[Query] = []
    for function in functions:
        for spec in (*specs, *extra.get(function, ())):
            queries.append(Query(f"q{len(queries)}", function, spec))
    return queries


def batches(
    queries: Sequence[Query], size: int = MAX_QUERIES_PER_CALL
) -> Iterator[Sequence[Query]]:
    """The queries in slices that one GetMetricData call accepts."""
    for first in range(0, len(queries), size):
        yield queries[first : first + size]


def period_for(start: float, end: float) -> int:
    """A CloudWatch period (a multiple of 60 s) covering the window in one datapoint."""
    return max(60, math.ceil((end - start) / 60) * 60)


def fetch_stats(
    cloudwatch: Any, queries: Sequence[Query], start: float, end: float
) -> dict[str, dict[str, float]]:
    """Run the queries, one GetMetricData call per 500, and return stats by function name."""
    period = period_for(start, end)
    results: list[Mapping[str, Any]] = []
    for batch in batches(queries):
        pages = cloudwatch.get_paginator("get_metric_data").paginate(
            MetricDataQueries=[q.request(period) for q in batch],
            StartTime=datetime.fromtimestamp(start, UTC),
            EndTime=datetime.fromtimestamp(end, UTC),
            ScanBy="TimestampDescending",
        )
        for page in pages:
            results.extend(page.get("MetricDataResults", []))
    return parse_results(results, queries)


def parse_results(
    results: Iterable[Mapping[str, Any]], queries: Sequence[Query]
) -> dict[str, dict[str, float]]:
    """Turn GetMetricData's ``MetricDataResults`` into stats by function name.

    Results of one query may arrive in several pages and hold several datapoints; they
    are combined by the query's statistic (sums add up, maxima and percentiles take the
    largest, averages are averaged).  Results for unknown ids are ignored.
    """
    by_id = {q.id: q for q in queries}
    values: dict[str, list[float]] = {}
    for result in results:
        query_id = str(result.get("Id", ""))
        if query_id not in by_id:
            continue
        values.setdefault(query_id, []).extend(float(v) for v in result.get("Values", []))
        if result.get("StatusCode") not in (None, "Complete", "PartialData"):
            log.warning("metric query incomplete", id=query_id, status=result.get("StatusCode"))
    stats: dict[str, dict[str, float]] = {}
    for query_id, points in values.items():
        if points:
            query = by_id[query_id]
            stats.setdefault(query.function, {})[query.spec.key] = combine(query.spec.stat, points)
    return stats


def combine(stat: str, points: Sequence[float]) -> float:
    """One value from several datapoints of the same statistic."""
    if stat == "Sum":
        return math.fsum(points)
    if stat == "Average":
        return math.fsum(points) / len(points)
    return max(points)


def functions_with_insights(cloudwatch: Any) -> set[str]:
    """Names of the functions that report Lambda Insights memory metrics."""
    names: set[str] = set()
    pages = cloudwatch.get_paginator("list_metrics").paginate(
        Namespace=INSIGHTS_NAMESPACE, MetricName="used_memory_max"
    )
    for page in pages:
        for metric in page.get("Metrics", []):
            for dimension in metric.get("Dimensions", []):
                if dimension.get("Name") == "function_name":
                    names.add(str(dimension["Value"]))
    return names
