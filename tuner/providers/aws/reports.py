"""Parsing of Lambda's own log lines: REPORT lines, timeouts and out-of-memory signatures.

Lambda writes one ``REPORT`` line per invocation, e.g.::

    REPORT RequestId: 8f5e...  Duration: 102.25 ms  Billed Duration: 103 ms
    Memory Size: 128 MB  Max Memory Used: 128 MB  Init Duration: 250.12 ms

plus ``Task timed out after 3.00 seconds`` on a timeout and ``Runtime exited with error:
signal: killed`` or ``Runtime.OutOfMemory`` when the function ran out of memory.  Newer
runtimes add ``Status: timeout`` / ``Status: error  Error Type: Runtime.OutOfMemory`` to
the REPORT line.  Functions logging in Lambda's JSON format write the same numbers as a
``platform.report`` record.  One invocation may show several signatures; each counts once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from tuner.stats import percentile

FILTER_PATTERN = (
    '?REPORT ?"platform.report" ?"Task timed out" ?"Runtime exited with error" '
    '?"Runtime.OutOfMemory"'
)
"""A CloudWatch Logs filter pattern selecting the lines this module reads."""

_REPORT = re.compile(r"^\s*(?:\S+\s+)?REPORT\s+RequestId:")
_FIELD = re.compile(
    r"(Duration|Billed Duration|Memory Size|Max Memory Used|Init Duration):\s*(\S+)"
)
_STATUS = re.compile(r"Status:\s*(\w+)")
_REQUEST_ID = re.compile(r"RequestId:\s*([\w-]+)")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_TIMEOUT = "Task timed out after"
_OOM_SIGNATURES = ("Runtime exited with error: signal: killed", "Runtime.OutOfMemory")
_REQUIRED = ("Duration", "Billed Duration", "Memory Size", "Max Memory Used")
_JSON_REPORT = '"platform.report"'


@dataclass(frozen=True, slots=True)
class Report:
    """The numbers of one REPORT line."""

    request_id: str
    duration_ms: float
    billed_duration_ms: float
    memory_size_mb: float
    max_memory_used_mb: float
    init_duration_ms: float | None
    status: str | None

    @property
    def out_of_memory(self) -> bool:
        """True when the invocation used all the memory it had."""
        return self.max_memory_used_mb >= self.memory_size_mb


@dataclass(frozen=True, slots=True)
class LogSummary:
    """What the log lines of one function say about one window."""

    reports: tuple[Report, ...]
    timeouts: int
    ooms: int
    malformed: int

    @property
    def durations_ms(self) -> list[float]:
        """The duration of every reported invocation, in log order."""
        return [r.duration_ms for r in self.reports]

    @property
    def cold_starts(self) -> int:
        """Invocations that paid an init phase."""
        return sum(1 for r in self.reports if r.init_duration_ms is not None)

    @property
    def peak_memory_mb(self) -> float | None:
        """The largest Max Memory Used, or None without reports."""
        return max((r.max_memory_used_mb for r in self.reports), default=None)

    def duration_percentile(self, q: float) -> float | None:
        """The nearest-rank ``q``-th percentile (0-100) of the reported durations."""
        return percentile(self.durations_ms, q)


def parse_report(line: str) -> Report | None:
    """The numbers of a REPORT line; None when a required field is missing or not a number."""
    fields: dict[str, float] = {}
    for name, raw in _FIELD.findall(line):
        try:
            fields[name] = float(raw)
        except ValueError:
            return None
    if any(name not in fields for name in _REQUIRED):
        return None
    request = _REQUEST_ID.search(line)
    status = _STATUS.search(line)
    return Report(
        request_id=request.group(1) if request else "",
        duration_ms=fields["Duration"],
        billed_duration_ms=fields["Billed Duration"],
        memory_size_mb=fields["Memory Size"],
        max_memory_used_mb=fields["Max Memory Used"],
        init_duration_ms=fields.get("Init Duration"),
        status=status.group(1).lower() if status else None,
    )


def parse_json_report(line: str) -> Report | None:
    """The numbers of a JSON ``platform.report`` record; None when it is not one."""
    try:
        event = json.loads(line)
        record = event["record"]
        metrics = record["metrics"]
        return Report(
            request_id=str(record.get("requestId", "")),
            duration_ms=float(metrics["durationMs"]),
            billed_duration_ms=float(metrics["billedDurationMs"]),
            memory_size_mb=float(metrics["memorySizeMB"]),
            max_memory_used_mb=float(metrics["maxMemoryUsedMB"]),
            init_duration_ms=_float_or_none(metrics.get("initDurationMs")),
            status=_status(record),
        )
    except (ValueError, TypeError, KeyError):
        return None


def _status(record: dict[str, object]) -> str | None:
    status = record.get("status")
    return str(status).lower() if status else None


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def summarize(lines: Iterable[str]) -> LogSummary:
    """Count reports, timeouts, out-of-memory kills and malformed REPORT lines.

    Other lines (the function's own output) are ignored; a REPORT line that cannot be
    parsed is counted as malformed and skipped.
    """
    reports: list[Report] = []
    timeouts = _Invocations()
    ooms = _Invocations()
    malformed = 0
    for line in lines:
        is_json_report = _JSON_REPORT in line and line.lstrip().startswith("{")
        if is_json_report or _REPORT.match(line):
            report = parse_json_report(line) if is_json_report else parse_report(line)
            if report is None:
                malformed += 1
                continue
            reports.append(report)
            if report.status == "timeout":
                timeouts.add(report.request_id)
            if report.out_of_memory or "Runtime.OutOfMemory" in line:
                ooms.add(report.request_id)
        elif _TIMEOUT in line:
            timeouts.add(_request_id(line))
        elif any(signature in line for signature in _OOM_SIGNATURES):
            ooms.add(_request_id(line))
    return LogSummary(tuple(reports), timeouts.count, ooms.count, malformed)


def _request_id(line: str) -> str:
    labelled = _REQUEST_ID.search(line)
    if labelled:
        return labelled.group(1)
    bare = _UUID.search(line)
    return bare.group(0) if bare else ""


class _Invocations:
    """Distinct invocations by request id; lines without an id count one each."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._anonymous = 0

    def add(self, request_id: str) -> None:
        if request_id:
            self._ids.add(request_id)
        else:
            self._anonymous += 1

    @property
    def count(self) -> int:
        return len(self._ids) + self._anonymous
