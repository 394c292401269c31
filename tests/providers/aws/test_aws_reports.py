"""Parsing Lambda's REPORT, timeout and out-of-memory lines."""

from __future__ import annotations

import json

from aws_world import report_line

from tuner.providers.aws.reports import parse_report, summarize
from tuner.stats import percentile

A = "8f5e3c1a-1111-4d7b-9a51-0a1b2c3d4e5f"
B = "8f5e3c1a-2222-4d7b-9a51-0a1b2c3d4e5f"


def test_report_line_fields_are_parsed() -> None:
    report = parse_report(report_line(A, 102.25, 256, 91, init_ms=250.12))
    assert report is not None
    assert report.request_id == A
    assert (report.duration_ms, report.billed_duration_ms) == (102.25, 103.0)
    assert (report.memory_size_mb, report.max_memory_used_mb) == (256.0, 91.0)
    assert report.init_duration_ms == 250.12
    assert not report.out_of_memory


def test_an_oom_invocation_counts_once_over_its_error_and_report_lines() -> None:
    summary = summarize(
        [
            f"START RequestId: {A} Version: $LATEST",
            f"RequestId: {A} Error: Runtime exited with error: signal: killed",
            "Runtime.ExitError",
            report_line(A, 800.0, 128, 128),
            report_line(B, 20.0, 128, 60),
        ]
    )
    assert summary.ooms == 1
    assert summary.timeouts == 0
    assert summary.peak_memory_mb == 128.0


def test_runtime_out_of_memory_status_is_an_oom() -> None:
    line = report_line(A, 50.0, 512, 300, status="error") + "Error Type: Runtime.OutOfMemory"
    assert summarize([line]).ooms == 1


def test_a_timeout_counts_once_over_its_timeout_line_and_report_status() -> None:
    summary = summarize(
        [
            f"2026-11-27T20:00:03.010Z {A} Task timed out after 3.00 seconds",
            report_line(A, 3000.0, 128, 70, status="timeout"),
            f"2026-11-27T20:00:09.010Z {B} Task timed out after 3.00 seconds",
        ]
    )
    assert summary.timeouts == 2
    assert summary.ooms == 0


def test_cold_starts_are_reports_with_an_init_duration() -> None:
    summary = summarize(
        [report_line(A, 10.0, 128, 50, init_ms=300.0), report_line(B, 10.0, 128, 50)]
    )
    assert summary.cold_starts == 1


def test_malformed_report_lines_are_counted_and_skipped() -> None:
    summary = summarize(
        [
            "REPORT RequestId: x Duration: fast Billed Duration: 1 ms",
            "REPORT RequestId: y Duration: 12.0 ms\tBilled Duration: 13 ms",
            report_line(A, 12.0, 128, 40),
            "application says hello",
        ]
    )
    assert summary.malformed == 2
    assert len(summary.reports) == 1


def test_duration_percentiles_use_the_nearest_rank() -> None:
    durations = [float(d) for d in range(1, 101)]
    assert percentile(durations, 50) == 50.0
    assert percentile(durations, 95) == 95.0
    assert percentile(durations, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def json_report(request_id: str, status: str = "success", **metrics: float) -> str:
    """A platform.report record as Lambda writes it in the JSON log format."""
    record: dict[str, object] = {
        "requestId": request_id,
        "metrics": {
            "durationMs": 120.5,
            "billedDurationMs": 121,
            "memorySizeMB": 256,
            "maxMemoryUsedMB": 80,
            **metrics,
        },
        "status": status,
    }
    if status == "error":
        record["errorType"] = "Runtime.OutOfMemory"
    return json.dumps({"time": "2026-11-27T20:00:00.000Z", "type": "platform.report",
                       "record": record})  # fmt: skip


def test_json_platform_reports_count_like_text_reports() -> None:
    summary = summarize(
        [
            json_report(A, initDurationMs=210.0),
            json_report(B, status="timeout", durationMs=3000.0),
            json_report("c", status="error", maxMemoryUsedMB=250),
            '{"type": "platform.report", "record": {"requestId": "d"}}',
            json.dumps({"type": "function", "record": "user output"}),
        ]
    )
    assert len(summary.reports) == 3
    assert (summary.timeouts, summary.ooms, summary.cold_starts) == (1, 1, 1)
    assert summary.malformed == 1
    assert summary.duration_percentile(100) == 3000.0
