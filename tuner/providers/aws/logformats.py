"""Reading one Lambda log line: REPORT and INIT_REPORT lines, JSON records, Insights events.

Lines are parsed on their field labels, never on positions, so that they are read the
same behind any prefix a tool adds (``sam logs`` puts the stream and a timestamp first,
log shippers their own header).  A REPORT line is found by ``REPORT RequestId:``;
every number must be a plain non-negative decimal (``nan``, ``inf``, ``1e999`` and
negative numbers make the line malformed).  Labels are matched whole, so SnapStart's
``Restore Duration`` and ``Billed Restore Duration`` never stand in for ``Duration``.

A JSON report may carry only some of its metrics (a ``platform.report`` of an invocation
that timed out or crashed can lack ``maxMemoryUsedMB``): its duration is kept and the
missing numbers are unknown, never zero.  Only a record without a duration, or with a
number that is not a finite non-negative number, is malformed.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

_REPORT = re.compile(r"(?<!\w)REPORT RequestId:\s*(?P<id>[\w-]+)")
_INIT_REPORT = re.compile(r"(?<!\w)INIT_REPORT\b")
_LABELS = (
    "Billed Restore Duration",
    "Restore Duration",
    "Billed Duration",
    "Init Duration",
    "Duration",
    "Memory Size",
    "Max Memory Used",
    "Status",
    "Error Type",
    "Phase",
)
_FIELD = re.compile(r"(?:^|(?<=\s))(" + "|".join(map(re.escape, _LABELS)) + r"):[ \t]*([^\s\"]+)")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_REQUIRED = ("Duration", "Billed Duration", "Memory Size", "Max Memory Used")
_INIT_FAILED = ("error", "failure")


@dataclass(frozen=True, slots=True)
class Report:
    """The numbers of one invocation's report (a REPORT line, JSON record or Insights event)."""

    request_id: str
    duration_ms: float
    billed_duration_ms: float | None
    memory_size_mb: float | None
    max_memory_used_mb: float | None
    init_duration_ms: float | None
    status: str | None
    restore_duration_ms: float | None = None
    error_type: str | None = None

    @property
    def out_of_memory(self) -> bool:
        """True when the invocation used all the memory it had, or Lambda said so."""
        if self.error_type == "Runtime.OutOfMemory":
            return True
        used, size = self.max_memory_used_mb, self.memory_size_mb
        return used is not None and size is not None and used >= size

    @property
    def cold_start(self) -> bool:
        """True when the invocation paid an init phase or a SnapStart restore."""
        return self.init_duration_ms is not None or self.restore_duration_ms is not None


@dataclass(frozen=True, slots=True)
class InitReport:
    """One INIT_REPORT line or ``platform.initReport`` record: how an init phase ended."""

    status: str | None
    error_type: str | None

    @property
    def failed(self) -> bool:
        """True when the init phase failed (not a timeout): the handler never ran."""
        return self.status in _INIT_FAILED

    @property
    def timed_out(self) -> bool:
        """True when the init phase ran out of time, which more CPU (memory) can cure."""
        return self.status == "timeout"


def is_report(line: str) -> bool:
    """True when the line holds a text REPORT line, behind any prefix."""
    return _REPORT.search(line) is not None


def is_init_report(line: str) -> bool:
    """True when the line holds a text INIT_REPORT line, behind any prefix."""
    return _INIT_REPORT.search(line) is not None


def _fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for label, value in _FIELD.findall(text):
        fields.setdefault(label, value)  # the first of a repeated label counts
    return fields


def _decimal(raw: str | None) -> float | None:
    """A plain non-negative decimal number; None for anything else."""
    if raw is None or not _NUMBER.match(raw):
        return None
    value = float(raw)
    return value if math.isfinite(value) else None


def parse_report(line: str) -> Report | None:
    """The numbers of a text REPORT line; None when a required field is missing or bad."""
    anchor = _REPORT.search(line)
    if anchor is None:
        return None
    fields = _fields(line[anchor.end() :])
    numbers = {label: _decimal(fields.get(label)) for label in _REQUIRED}
    if any(value is None for value in numbers.values()):
        return None
    optional = {}
    for label in ("Init Duration", "Restore Duration"):
        if label in fields:
            optional[label] = _decimal(fields[label])
            if optional[label] is None:
                return None
    status = fields.get("Status")
    return Report(
        request_id=anchor.group("id"),
        duration_ms=numbers["Duration"] or 0.0,
        billed_duration_ms=numbers["Billed Duration"] or 0.0,
        memory_size_mb=numbers["Memory Size"] or 0.0,
        max_memory_used_mb=numbers["Max Memory Used"] or 0.0,
        init_duration_ms=optional.get("Init Duration"),
        status=status.lower() if status else None,
        restore_duration_ms=optional.get("Restore Duration"),
        error_type=fields.get("Error Type"),
    )


def parse_init_report(line: str) -> InitReport | None:
    """How the init phase of a text INIT_REPORT line ended; None when it is not one."""
    anchor = _INIT_REPORT.search(line)
    if anchor is None:
        return None
    fields = _fields(line[anchor.end() :])
    status = fields.get("Status")
    return InitReport(status.lower() if status else None, fields.get("Error Type"))


# ---------------------------------------------------------------- JSON


def parse_json(line: str) -> Report | InitReport | None | bool:
    """A JSON line: a Report or InitReport, False when it is not one tuner reads, None when bad.

    Reads ``platform.report`` and ``platform.initReport`` records of Lambda's JSON log
    format, and Lambda Insights ``performance`` events.
    """
    try:
        event = json.loads(line)
    except ValueError:
        return False
    if not isinstance(event, dict):
        return False
    kind = event.get("type")
    if kind == "platform.report":
        return _platform_report(event.get("record"))
    if kind == "platform.initReport":
        record = event.get("record")
        if not isinstance(record, dict):
            return None
        status = record.get("status")
        return InitReport(str(status).lower() if status else None, _str(record.get("errorType")))
    if event.get("event_type") == "performance":
        return _insights_event(event)
    return False


def _platform_report(record: Any) -> Report | None:
    if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
        return None
    metrics = record["metrics"]
    status = record.get("status")
    return _json_report(
        metrics,
        ("durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"),
        request_id=str(record.get("requestId", "")),
        init=metrics.get("initDurationMs"),
        restore=metrics.get("restoreDurationMs"),
        status=str(status).lower() if status else None,
        error_type=_str(record.get("errorType")),
    )


def _insights_event(event: dict[str, Any]) -> Report | None:
    """A Lambda Insights performance event (one per invocation) as a report."""
    return _json_report(
        event,
        ("duration", "billed_duration", "total_memory", "used_memory_max"),
        request_id=str(event.get("request_id", "")),
        init=event.get("init_duration") if event.get("cold_start") is True else None,
        status="timeout" if event.get("timeout") is True else None,
    )


def _json_report(
    source: dict[str, Any],
    keys: tuple[str, str, str, str],
    *,
    request_id: str,
    init: Any,
    status: str | None,
    restore: Any = None,
    error_type: str | None = None,
) -> Report | None:
    """A report from duration, billed duration, memory size and memory used under ``keys``.

    The duration is required; the other numbers may be missing (unknown).  None when the
    duration is missing or any number present is not a finite non-negative number.
    """
    given = [source.get(key) for key in keys] + [init, restore]
    if given[0] is None or any(v is not None and _json_number(v) is None for v in given):
        return None
    duration, billed, size, used = (_json_number(v) for v in given[:4])
    return Report(
        request_id=request_id,
        duration_ms=duration or 0.0,
        billed_duration_ms=billed,
        memory_size_mb=size,
        max_memory_used_mb=used,
        init_duration_ms=_json_number(init),
        status=status,
        restore_duration_ms=_json_number(restore),
        error_type=error_type,
    )


def _json_number(value: Any) -> float | None:
    """A finite non-negative JSON number (not a bool, not a string); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        f = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return f if 0.0 <= f < math.inf else None


def _str(value: Any) -> str | None:
    return str(value) if value else None
