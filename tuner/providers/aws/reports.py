"""Summaries of Lambda's own log lines: reports, timeouts, out-of-memory kills, init failures.

Lambda writes one ``REPORT`` line per invocation, e.g.::

    REPORT RequestId: 8f5e...  Duration: 102.25 ms  Billed Duration: 103 ms
    Memory Size: 128 MB  Max Memory Used: 128 MB  Init Duration: 250.12 ms

plus ``Task timed out after 3.00 seconds`` on a timeout, and ``Runtime exited with error:
signal: killed``, ``Runtime.OutOfMemory`` or the runtime's own words when the function ran
out of memory (every runtime's are in :mod:`.signatures`).  Newer runtimes add ``Status:
timeout`` / ``Status: error  Error Type: Runtime.OutOfMemory`` to the REPORT line.
Functions logging in Lambda's JSON format write the same numbers as a ``platform.report``
record, and Lambda Insights writes a ``performance`` event per invocation.  One
invocation may show several signatures; each counts once.

An init phase that fails (``INIT_REPORT ... Status: error``, an import error, a handler
that is not found) is counted apart, as ``init_errors``: the handler never ran, so no
memory or timeout change can fix it.  An init phase that runs out of time (``INIT_REPORT
... Status: timeout``) is counted as ``init_timeouts``: more memory, and with it more CPU,
can cure it.  How each line is read is in :mod:`.logformats`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from tuner.domain.stats import percentile
from tuner.providers.aws.logformats import (
    InitReport,
    Report,
    is_init_report,
    is_report,
    parse_init_report,
    parse_json,
    parse_report,
)
from tuner.providers.aws.signatures import FILTER_TERMS, INIT_ERROR_TYPES, LineKind, classify

__all__ = ["FILTER_PATTERN", "LogSummary", "Report", "parse_report", "summarize"]

FILTER_PATTERN = " ".join(f'?"{term}"' for term in FILTER_TERMS)
"""A CloudWatch Logs filter pattern selecting the lines this module reads.

Each term is quoted, so CloudWatch matches it as an exact phrase of whole terms."""

_REQUEST_ID = re.compile(r"RequestId:\s*([\w-]+)")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


@dataclass(frozen=True, slots=True)
class LogSummary:
    """What the log lines of one function say about one window."""

    reports: tuple[Report, ...]
    timeouts: int
    ooms: int
    malformed: int
    init_errors: int = 0
    init_timeouts: int = 0
    """Init phases that ran out of time (the handler never ran; more CPU can cure it)."""
    failed: int = 0
    """Invocations that failed as the lines show: timed out, out of memory, or Status: error."""

    @property
    def durations_ms(self) -> list[float]:
        """The duration of every reported invocation, in log order."""
        return [r.duration_ms for r in self.reports]

    @property
    def cold_starts(self) -> int:
        """Invocations that paid an init phase (or a SnapStart restore)."""
        return sum(1 for r in self.reports if r.cold_start)

    @property
    def peak_memory_mb(self) -> float | None:
        """The largest Max Memory Used, or None without reports."""
        used = [r.max_memory_used_mb for r in self.reports if r.max_memory_used_mb is not None]
        return max(used, default=None)

    def duration_percentile(self, q: float) -> float | None:
        """The nearest-rank ``q``-th percentile (0-100) of the reported durations."""
        return percentile(self.durations_ms, q)


def summarize(lines: Iterable[str], memory_mb: float | None = None) -> LogSummary:
    """Count reports, timeouts, out-of-memory kills, init failures and malformed reports.

    Other lines (the function's own output) are ignored; a report that cannot be
    parsed is counted as malformed and skipped.  Two reports of one request (a REPORT
    line and an Insights event) count once.  With ``memory_mb`` (the configuration in
    force), invocations whose report says they ran at another Memory Size are left out,
    with their timeouts and OOMs: they are evidence of the past, not of this size.
    """
    reports: dict[str, Report] = {}
    anonymous: list[Report] = []
    timeouts = _Invocations()
    ooms = _Invocations()
    malformed = failed_inits = init_timeouts = import_errors = failed_reports = 0
    for line in lines:
        parsed: Report | InitReport | None | bool = False
        if line.lstrip().startswith("{"):
            parsed = parse_json(line)
        if parsed is False and is_report(line):
            parsed = parse_report(line)
        elif parsed is False and is_init_report(line):
            parsed = parse_init_report(line)
        if parsed is None:
            malformed += 1
        elif isinstance(parsed, InitReport):
            failed_inits += parsed.failed
            init_timeouts += parsed.timed_out
        elif isinstance(parsed, Report):
            if parsed.request_id and parsed.request_id in reports:
                pass
            elif parsed.request_id:
                reports[parsed.request_id] = parsed
            else:
                anonymous.append(parsed)
            if parsed.status == "timeout":
                timeouts.add(parsed.request_id)
            if parsed.out_of_memory:
                ooms.add(parsed.request_id)
            failed_reports += parsed.error_type in INIT_ERROR_TYPES
        else:
            kind = classify(line)
            if kind is LineKind.TIMEOUT:
                timeouts.add(_request_id(line))
            elif kind is LineKind.OOM:
                ooms.add(_request_id(line))
            elif kind is LineKind.INIT_FAILURE:
                import_errors += 1
    if memory_mb is not None:
        past = {
            rid for rid, r in reports.items() if r.memory_size_mb and r.memory_size_mb != memory_mb
        }
        reports = {rid: r for rid, r in reports.items() if rid not in past}
        anonymous = [r for r in anonymous if not r.memory_size_mb or r.memory_size_mb == memory_mb]
        timeouts.forget(past)
        ooms.forget(past)
    errored = {rid for rid, r in reports.items() if r.status in ("error", "timeout")}
    failed = errored | timeouts.ids | ooms.ids
    failed_anonymous = sum(
        1 for r in anonymous if r.status in ("error", "timeout") or r.out_of_memory
    )
    return LogSummary(
        tuple(reports.values()) + tuple(anonymous),
        timeouts.count,
        ooms.count,
        malformed,
        # one failed init writes an INIT_REPORT, its error and a report: the largest tally
        init_errors=max(failed_inits, import_errors, failed_reports),
        init_timeouts=init_timeouts,
        failed=len(failed) + max(failed_anonymous, timeouts.anonymous + ooms.anonymous),
    )


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

    def forget(self, request_ids: set[str]) -> None:
        self._ids -= request_ids

    @property
    def count(self) -> int:
        return len(self._ids) + self._anonymous

    @property
    def ids(self) -> set[str]:
        return set(self._ids)

    @property
    def anonymous(self) -> int:
        return self._anonymous
