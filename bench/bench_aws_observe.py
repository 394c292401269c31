"""Benchmark of the AWS provider's observe pass against moto's server on 127.0.0.1.

For fleets of 300 and 1,200 functions, all with datapoints: seconds per observe,
GetMetricData and FilterLogEvents calls (2% of the functions are flagged by errors and
have their logs read); and REPORT-line parsing throughput.  Target: at most
ceil(queries / 500) GetMetricData calls.  The seconds are mostly moto's: it scans every
stored datapoint for every query, so its time grows with the square of the fleet.
Run: ``python bench/bench_aws_observe.py``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tuner.domain.model import FunctionConfig, FunctionRef, Target
from tuner.providers.aws import AwsProvider, Settings
from tuner.providers.aws.metrics import CORE_METRICS
from tuner.providers.aws.reports import summarize

REGION = "eu-west-1"


class WallClock:
    """The real time."""

    def now(self) -> float:
        return time.time()


def report(rid: str, duration_ms: float, used_mb: int) -> str:
    """A REPORT line of a 512 MB function."""
    return (
        f"REPORT RequestId: {rid}\tDuration: {duration_ms:.2f} ms\tBilled Duration: "
        f"{int(duration_ms) + 1} ms\tMemory Size: 512 MB\tMax Memory Used: {used_mb} MB\t"
    )


def seed(endpoint: str, names: list[str], when: float) -> None:
    """Metrics for every function, and logs for the 2% that report errors."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=endpoint)
    logs = boto3.client("logs", region_name=REGION, endpoint_url=endpoint)
    stamp = datetime.fromtimestamp(when, UTC)
    for first in range(0, len(names), 250):
        data: list[dict[str, Any]] = []
        for i, name in enumerate(names[first : first + 250], start=first):
            dims = [{"Name": "FunctionName", "Value": name}]
            errors = 2.0 if i % 50 == 0 else 0.0
            for metric, value in (("Invocations", 100.0), ("Errors", errors), ("Duration", 250.0)):
                data.append(
                    {"MetricName": metric, "Dimensions": dims, "Timestamp": stamp, "Value": value}
                )
        for chunk in range(0, len(data), 1000):
            cloudwatch.put_metric_data(
                Namespace="AWS/Lambda", MetricData=data[chunk : chunk + 1000]
            )
    for name in names[::50]:
        group = f"/aws/lambda/{name}"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        events = [
            {"timestamp": int(when * 1000) + i, "message": report(str(uuid.uuid4()), 250.0, 300)}
            for i in range(100)
        ]
        logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)


def bench_observe(endpoint: str, n: int) -> None:
    """Observe a fleet of ``n`` functions once and print the cost."""
    names = [f"bench-{n}-{i:05d}" for i in range(n)]
    now = time.time()
    seed(endpoint, names, now - 120)
    config = FunctionConfig(memory_mb=512, timeout_s=30.0)
    targets = [Target(FunctionRef("aws", name, REGION), config) for name in names]
    settings = Settings(
        regions=[REGION],
        endpoint_url=endpoint,
        rightsizing_every_cycles=10_000,
        max_log_reads_per_cycle=1_000,
    )
    provider = AwsProvider(settings, clock=WallClock())
    provider.start()
    calls: dict[str, int] = {}

    def count(model: Any, **_: Any) -> None:
        calls[model.name] = calls.get(model.name, 0) + 1

    for client in provider.clients(REGION).all():
        client.meta.events.register("before-call", count)
    started = time.perf_counter()
    facts = provider.observe(targets, now - 600, now)
    elapsed = time.perf_counter() - started
    provider.close()
    queries = n * len(CORE_METRICS)
    print(
        f"{n:>6} functions: {elapsed:6.2f} s observe, {len(facts)} with facts, "
        f"GetMetricData {calls.get('GetMetricData', 0)} (bound {math.ceil(queries / 500)}), "
        f"FilterLogEvents {calls.get('FilterLogEvents', 0)}"
    )


def bench_parsing(lines: int = 200_000) -> None:
    """REPORT lines parsed per second."""
    text = [report(str(uuid.uuid4()), 100.0 + i % 900, 200) for i in range(lines)]
    started = time.perf_counter()
    summary = summarize(text)
    elapsed = time.perf_counter() - started
    assert len(summary.reports) == lines
    print(f"parsing: {lines / elapsed:,.0f} REPORT lines/s")


def main() -> None:
    """Print the figures; ``--quick`` runs a small fleet, to check that it runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 functions, 20,000 lines")
    quick = parser.parse_args().quick
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for n in (30,) if quick else (300, 1_200):
            bench_observe(f"http://127.0.0.1:{port}", n)
    finally:
        server.stop()
    bench_parsing(20_000 if quick else 200_000)


if __name__ == "__main__":
    main()
