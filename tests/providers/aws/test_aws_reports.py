"""Parsing Lambda's REPORT, timeout and out-of-memory lines."""

from __future__ import annotations

import json

import pytest
from aws_world import report_line

from tuner.domain.stats import percentile
from tuner.providers.aws.logs import stream_version
from tuner.providers.aws.reports import parse_report, summarize

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
    return json.dumps(
        {"time": "2026-11-27T20:00:00.000Z", "type": "platform.report", "record": record}
    )


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


# ---------------------------------------------------------------- lines from the field
# Each line below is copied from a public source, cited beside it.

# wazuh/wazuh#25330 (https://github.com/wazuh/wazuh/issues/25330): a log shipper's header
WAZUH = (
    '2024 Aug 28 10:09:42 (fedora40) any->aws-s3 DEBUG: The message is "REPORT RequestId: '
    "533dca35-3ef3-4824-8632-ea4846bcd532\tDuration: 2642.34 ms\tBilled Duration: 2643 ms\t"
    "Memory Size: 128 MB\tMax Memory Used: 90 MB\t"
)
# aws-observability/aws-otel-js-instrumentation#233
# (https://github.com/aws-observability/aws-otel-js-instrumentation/pull/233): a table
# printed by the CLI, with X-Ray fields after the numbers
OTEL_TABLE = (
    "| 1753725990606 | REPORT RequestId: c421f663-0e83-4ec1-8c09-56f40ed74ea1 Duration: "
    "363.49 ms Billed Duration: 364 ms Memory Size: 128 MB Max Memory Used: 124 MB Init "
    "Duration: 1488.71 ms  XRAY TraceId: 1-6887bc24-69a702443d9e988c3411ef70 SegmentId: "
    "58c91264a2cb124e Sampled: true |"
)
# open-telemetry/opentelemetry-lambda#2098
# (https://github.com/open-telemetry/opentelemetry-lambda/pull/2098): a console prefix
OTEL_TIMEOUT = (
    "2025-12-29 14:36:41.795\tREPORT RequestId: 595492f6-5916-4b98-94e5-a1079dfab87b "
    "Duration: 5000.00 ms Billed Duration: 5579 ms Memory Size: 3008 MB Max Memory Used: "
    "113 MB Init Duration: 578.07 ms Status: timeout"
)
# `sam logs` output of a SnapStart function, quoted in a public SnapStart sample's README
# on GitHub (fields as https://docs.aws.amazon.com/lambda/latest/dg/snapstart-monitoring.html
# describes them: the cold start is Restore Duration + Duration)
SNAPSTART = (
    "2023/06/02/[72]88ab219a63d343d294d0a9947e8ab36a 2023-06-02T11:27:25.060000 REPORT "
    "RequestId: 8c360c87-d4b7-4423-b5f3-af02be3c1763\tDuration: 2338.66 ms\tBilled Duration: "
    "2521 ms\tMemory Size: 3009 MB\tMax Memory Used: 173 MB\tRestore Duration: 398.97 ms\t"
    "Billed Restore Duration: 182 ms\t"
)
# `sam logs` output of a Python function whose import fails, quoted in a public SAM
# sample's README on GitHub (a FastAPI chat-bot, 2024-08-18): two init attempts
SAM_IMPORT_ERROR = [
    "2024/08/18/[$LATEST]60cefc4c4d174d898e4dbb301f9f10ef 2024-08-18T11:04:11.524000 [ERROR] "
    "Runtime.ImportModuleError: Unable to import module 'app': No module named 'daily'",
    "2024/08/18/[$LATEST]60cefc4c4d174d898e4dbb301f9f10ef 2024-08-18T11:04:11.750000 "
    "INIT_REPORT Init Duration: 1670.77 ms   Phase: init     Status: error   Error Type: "
    "Runtime.Unknown",
    "2024/08/18/[$LATEST]60cefc4c4d174d898e4dbb301f9f10ef 2024-08-18T11:04:13.241000 [ERROR] "
    "Runtime.ImportModuleError: Unable to import module 'app': No module named 'daily'",
    "2024/08/18/[$LATEST]60cefc4c4d174d898e4dbb301f9f10ef 2024-08-18T11:04:13.484000 "
    "INIT_REPORT Init Duration: 1712.41 ms   Phase: invoke   Status: error   Error Type: "
    "Runtime.Unknown",
    "2024/08/18/[$LATEST]60cefc4c4d174d898e4dbb301f9f10ef 2024-08-18T11:04:13.484000 REPORT "
    "RequestId: c16b0a58-61af-4b5e-ae57-b5dad549e389  Duration: 1713.36 ms    Billed "
    "Duration: 1714 ms      Memory Size: 3008 MB    Max Memory Used: 102 MB",
]
# An init timeout quoted in a public project's notes on GitHub (a model loaded at import
# took longer than Lambda's 10 s init limit)
INIT_TIMEOUT = "INIT_REPORT Init Duration: 9999.79 ms    Phase: init    Status: timeout"
# aws-samples/aws-health-aware#112 (https://github.com/aws-samples/aws-health-aware/issues/112)
IMPORT_ERROR = (
    "[ERROR] Runtime.ImportModuleError: Unable to import module 'handler': "
    "No module named 'handler'"
)
# The Lambda Insights event of
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Lambda-Insights-example-event.html
INSIGHTS = (
    '{ "_aws": { "Timestamp": 1605034324256, "CloudWatchMetrics": [ { "Namespace": '
    '"LambdaInsights", "Dimensions": [ [ "function_name" ], [ "function_name", "version" ] ], '
    '"Metrics": [ { "Name": "memory_utilization", "Unit": "Percent" }, { "Name": '
    '"total_memory", "Unit": "Megabytes" }, { "Name": "used_memory_max", "Unit": "Megabytes" '
    '}, { "Name": "cpu_total_time", "Unit": "Milliseconds" }, { "Name": "tx_bytes", "Unit": '
    '"Bytes" }, { "Name": "rx_bytes", "Unit": "Bytes" }, { "Name": "total_network", "Unit": '
    '"Bytes" }, { "Name": "init_duration", "Unit": "Milliseconds" } ] } ], "LambdaInsights": '
    '{ "ShareTelemetry": true } }, "event_type": "performance", "function_name": '
    '"cpu-intensive", "version": "Blue", "request_id": "12345678-8bcc-42f7-b1de-123456789012", '
    '"trace_id": "1-5faae118-12345678901234567890", "duration": 45191, "billed_duration": '
    '45200, "billed_mb_ms": 11571200, "cold_start": true, "init_duration": 130, "tmp_free": '
    '538329088, "tmp_max": 551346176, "threads_max": 11, "used_memory_max": 63, '
    '"total_memory": 256, "memory_utilization": 24, "cpu_user_time": 6640, "cpu_system_time": '
    '50, "cpu_total_time": 6690, "fd_use": 416, "fd_max": 32642, "tx_bytes": 4434, '
    '"rx_bytes": 6911, "timeout": true, "shutdown_reason": "Timeout", "total_network": 11345, '
    '"agent_version": "1.0.72.0", "agent_memory_avg": 10, "agent_memory_max": 10 }'
)
# Node's heap limit, as Node prints it: google-gemini/gemini-cli#4359
# (https://github.com/google-gemini/gemini-cli/issues/4359)
NODE_HEAP = "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"
# Python's MemoryError in Lambda: cloudandthings/terraform-aws-clickops-notifier#35
# (https://github.com/cloudandthings/terraform-aws-clickops-notifier/issues/35)
PYTHON_MEMORY_ERROR = "[ERROR] MemoryError\nTraceback (most recent call last):"


def test_reports_behind_prefixes_of_several_tokens_are_read() -> None:
    summary = summarize([WAZUH, OTEL_TABLE, OTEL_TIMEOUT])
    assert summary.malformed == 0
    assert [r.request_id[:8] for r in summary.reports] == ["533dca35", "c421f663", "595492f6"]
    assert summary.durations_ms == [2642.34, 363.49, 5000.0]
    assert [r.max_memory_used_mb for r in summary.reports] == [90.0, 124.0, 113.0]
    assert (summary.timeouts, summary.cold_starts, summary.ooms) == (1, 2, 0)


def test_snapstart_restore_durations_never_replace_the_duration() -> None:
    report = parse_report(SNAPSTART)
    assert report is not None
    assert (report.duration_ms, report.billed_duration_ms) == (2338.66, 2521.0)
    assert report.restore_duration_ms == 398.97
    assert report.init_duration_ms is None
    assert summarize([SNAPSTART]).cold_starts == 1


def test_init_failures_and_import_errors_are_init_errors_not_timeouts_or_ooms() -> None:
    summary = summarize(SAM_IMPORT_ERROR)
    assert summary.init_errors == 2  # two failed inits, each with its import error line
    assert (summary.timeouts, summary.ooms, summary.malformed) == (0, 0, 0)
    assert len(summary.reports) == 1
    init_timeout = summarize([INIT_TIMEOUT])  # its own fact: more CPU can cure it
    assert (init_timeout.init_timeouts, init_timeout.init_errors, init_timeout.timeouts) == (
        1,
        0,
        0,
    )
    assert summarize([IMPORT_ERROR]).init_errors == 1
    assert summarize(["INIT_REPORT Init Duration: 9908.09 ms"]).init_errors == 0  # success
    record = {
        "type": "platform.initReport",
        "record": {"phase": "init", "status": "error", "errorType": "Runtime.ImportModuleError"},
    }
    assert summarize([json.dumps(record)]).init_errors == 1


def test_lambda_insights_performance_events_are_reports() -> None:
    summary = summarize([INSIGHTS])
    [report] = summary.reports
    assert (report.duration_ms, report.max_memory_used_mb, report.memory_size_mb) == (
        45191.0,
        63.0,
        256.0,
    )
    assert (summary.timeouts, summary.cold_starts, summary.ooms) == (1, 1, 0)
    text = report_line("12345678-8bcc-42f7-b1de-123456789012", 45191.0, 256, 63, status="timeout")
    both = summarize([text, INSIGHTS])  # one invocation, read twice
    assert (len(both.reports), both.timeouts) == (1, 1)


def test_node_heap_and_python_memory_errors_are_ooms() -> None:
    assert summarize([NODE_HEAP]).ooms == 1
    assert summarize([PYTHON_MEMORY_ERROR]).ooms == 1
    assert summarize(["handled a MemoryError politely"]).ooms == 0


@pytest.mark.parametrize("bad", ["nan", "inf", "1e999", "-5.00", "Infinity", "0x10"])
def test_numbers_that_are_not_plain_finite_decimals_make_a_report_malformed(bad: str) -> None:
    line = report_line(A, 100.0, 128, 60).replace("Duration: 100.00 ms", f"Duration: {bad} ms", 1)
    assert f"Duration: {bad} ms" in line
    summary = summarize([line])
    assert (summary.malformed, len(summary.reports)) == (1, 0)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "1e999", "-1", '"100"', "1" + "0" * 400])
def test_json_reports_with_impossible_numbers_are_malformed(bad: str) -> None:
    line = json_report(A).replace('"durationMs": 120.5', f'"durationMs": {bad}')
    assert bad in line
    assert summarize([line]).malformed == 1
    insights = INSIGHTS.replace('"used_memory_max": 63', f'"used_memory_max": {bad}')
    assert summarize([insights]).malformed == 1


def test_only_invocations_at_the_memory_in_force_count() -> None:
    """OOMs at 128 MB are the past once the function has 256 MB: they ask for no second raise."""
    old = ["8f5e0b3c-1111-4d3a-9b1e-000000000001", "8f5e0b3c-1111-4d3a-9b1e-000000000002"]
    lines = [
        *(f"RequestId: {rid} Error: Runtime exited with error: signal: killed" for rid in old),
        *(report_line(rid, 900.0, 128, 128) for rid in old),
        report_line("8f5e0b3c-1111-4d3a-9b1e-000000000003", 300.0, 256, 190),
    ]
    everything = summarize(lines)
    assert (len(everything.reports), everything.ooms) == (3, 2)
    current = summarize(lines, memory_mb=256)
    assert (len(current.reports), current.ooms, current.peak_memory_mb) == (1, 0, 190.0)


def test_failed_invocations_count_once_whatever_lines_say_they_failed() -> None:
    timed_out, killed, errored, fine = (
        f"8f5e3c1a-{n}-4d7b-9a51-0a1b2c3d4e5f" for n in ("3333", "4444", "5555", "6666")
    )
    summary = summarize(
        [
            f"2026-11-27T20:00:03.010Z {timed_out} Task timed out after 3.00 seconds",
            report_line(timed_out, 3000.0, 256, 90, status="timeout"),
            f"RequestId: {killed} Error: Runtime exited with error: signal: killed",
            report_line(killed, 800.0, 256, 256),
            report_line(errored, 30.0, 256, 90, status="error"),
            report_line(fine, 30.0, 256, 90),
        ]
    )
    assert (len(summary.reports), summary.failed) == (4, 3)
    assert (summary.timeouts, summary.ooms) == (1, 1)


@pytest.mark.parametrize(
    ("stream", "version"),
    [
        ("2026/11/27/[7]0123456789abcdef", "7"),
        ("2026/11/27/[$LATEST]0123456789abcdef", "$LATEST"),
        ("custom-stream", None),
    ],
)
def test_a_log_streams_name_says_which_version_wrote_it(stream: str, version: str | None) -> None:
    assert stream_version(stream) == version
