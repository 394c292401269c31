"""Who calls whom among Lambda functions, mined from their REPORT lines in CloudWatch Logs."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from aws_world import REGION, AwsWorld, CallRecorder, report_line
from test_aws_iam_policy import IAM_PREFIX

from tuner.cli.main import main
from tuner.providers import AWS_IAM_ACTIONS
from tuner.providers.aws import AwsProvider
from tuner.providers.aws.timing import intervals_of


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """The command points the logs at this test's captured stderr: put the session's back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def put_reports(world: AwsWorld, function: str, invocations: list[tuple[float, float]]) -> None:
    """Write one REPORT line per (start, duration_ms), stamped when the invocation ended."""
    logs = world.client("logs")
    group = f"/aws/lambda/{function}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="2026/11/30/[$LATEST]0")
    events = sorted(
        (
            {
                "timestamp": round((start + duration_ms / 1000) * 1000),
                "message": report_line(str(uuid.uuid4()), duration_ms, 128, 60),
            }
            for start, duration_ms in invocations
        ),
        key=lambda e: e["timestamp"],
    )
    logs.put_log_events(logGroupName=group, logStreamName="2026/11/30/[$LATEST]0", logEvents=events)


def call_graph(world: AwsWorld, now: float) -> dict[str, list[tuple[float, float]]]:
    """checkout -> pricing -> rates nested in each other; audit runs on its own."""
    rng = random.Random(7)
    checkout, pricing, rates, audit = [], [], [], []
    for i in range(60):
        start = now - 480 + i * 7 + rng.uniform(0, 3)
        checkout.append((start, 300.0))
        if rng.random() < 0.9:
            pricing.append((start + 0.05, 120.0))
            rates.append((start + 0.07, 40.0))
        audit.append((now - 480 + rng.uniform(0, 420), 50.0))
    made = {"checkout": checkout, "pricing": pricing, "rates": rates, "audit": audit}
    for name, invocations in made.items():
        world.create_function(name)
        put_reports(world, name, invocations)
    return made


def test_report_lines_give_the_true_edges_with_a_confidence(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], recorder: CallRecorder
) -> None:
    now = time.time()
    made = call_graph(world, now)
    provider = make_provider()
    recorder.watch(provider)

    topology = provider.timing_topology(now - 600, now)

    edges = {(e.source, e.target): e for e in topology.edges}
    assert set(edges) == {("checkout", "pricing"), ("pricing", "rates")}
    for edge in edges.values():
        assert edge.evidence == "timing"
        assert 0.9 <= edge.confidence < 1.0  # timing alone is never certain
    assert edges[("checkout", "pricing")].calls == len(made["pricing"]) < 60
    assert edges[("pricing", "rates")].p50_ms == pytest.approx(40.0, abs=0.01)
    assert {n.id for n in topology.nodes} == {"checkout", "pricing", "rates", "audit"}
    made_calls = {f"{IAM_PREFIX[service]}:{op}" for service, op in recorder.calls}
    assert "logs:FilterLogEvents" in made_calls
    assert made_calls <= set(AWS_IAM_ACTIONS), "no action beyond docs/iam-policy.json"


def test_tuner_topology_reads_the_timing_of_an_aws_account(
    world: AwsWorld,
    moto_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = time.time()
    call_graph(world, now)
    config = tmp_path / "tuner.yaml"
    config.write_text(
        f"providers:\n  - type: aws\n    regions: [{REGION}]\n    endpoint_url: {moto_url}\n"
    )

    assert main(["topology", "-c", str(config), "--source", "timing", "--since", "10m"]) == 0

    shown = json.loads(capsys.readouterr().out)
    assert {(e["source"], e["target"]) for e in shown["edges"]} == {
        ("checkout", "pricing"),
        ("pricing", "rates"),
    }
    assert {"id": "audit", "kind": "function"} in shown["nodes"]
    assert set(shown["edges"][0]) == {
        "source",
        "target",
        "calls",
        "p50_ms",
        "p95_ms",
        "error_rate",
        "confidence",
        "evidence",
    }


def test_a_report_read_twice_counts_once_and_a_timeout_counts_as_failed() -> None:
    line = report_line("r-1", 3000.0, 128, 60, status="timeout")
    other = json.dumps(
        {
            "type": "platform.report",
            "record": {
                "requestId": "r-2",
                "metrics": {
                    "durationMs": 250.0,
                    "billedDurationMs": 251,
                    "memorySizeMB": 128,
                    "maxMemoryUsedMB": 70,
                },
            },
        }
    )

    found = list(intervals_of("f", [(100.0, line), (100.0, line), (50.0, other), (60.0, "hi")]))

    assert [(i.start, i.end, i.failed) for i in found] == [
        (97.0, 100.0, True),
        (49.75, 50.0, False),
    ]
