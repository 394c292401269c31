"""Invocation intervals of Lambda functions from their REPORT lines, and the topology they imply.

Lambda writes one ``REPORT`` line per invocation as the invocation ends, so the log
event's timestamp is the invocation's end and ``Duration`` gives its start.  With those
intervals the heuristic miner (:mod:`tuner.mining.timing`) finds who calls whom
without any instrumentation: B's invocations run inside A's far more often than chance.
Only ``logs:FilterLogEvents`` is called, the action the provider already uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import structlog

from tuner.mining.timing import Interval
from tuner.providers.aws.clients import RegionClients
from tuner.providers.aws.errors import error_code
from tuner.providers.aws.logformats import Report, is_report, parse_json, parse_report
from tuner.providers.aws.logs import log_events
from tuner.trace.topology import Topology, from_timing

log = structlog.get_logger(__name__)

REPORT_PATTERN = '?REPORT ?"platform.report"'
"""A CloudWatch Logs filter pattern selecting report lines only."""

SLACK_S = 0.01
"""Clock disagreement tolerated at an interval's edges: REPORT stamps are whole
milliseconds, written a little after the handler returned."""


def report_of(message: str) -> Report | None:
    """The report a log line holds (a text REPORT line or a ``platform.report`` record)."""
    if message.lstrip().startswith("{"):
        parsed = parse_json(message)
        return parsed if isinstance(parsed, Report) else None
    return parse_report(message) if is_report(message) else None


def intervals_of(node: str, events: Iterable[tuple[float, str]]) -> Iterator[Interval]:
    """One interval per reported invocation: it ended at the event's time and lasted Duration.

    Two reports of one request count once; a timeout or an error type marks it failed.
    """
    seen: set[str] = set()
    for stamp, message in events:
        report = report_of(message)
        if report is None:
            continue
        if report.request_id:
            if report.request_id in seen:
                continue
            seen.add(report.request_id)
        failed = report.status in ("timeout", "error") or report.error_type is not None
        yield Interval(node, stamp - report.duration_ms / 1000.0, stamp, failed)


def invocation_intervals(
    clients: RegionClients,
    names: Sequence[str],
    start: float,
    end: float,
    max_events: int,
    node_names: dict[str, str] | None = None,
) -> list[Interval]:
    """The invocations of each function that ended in ``[start, end]``, from its log group.

    A function whose log group is missing or unreadable adds nothing (and a warning).
    ``node_names`` renames functions in the result (e.g. to add their region).
    """
    from botocore.exceptions import ClientError

    found: list[Interval] = []
    for name in names:
        node = (node_names or {}).get(name, name)
        events = log_events(clients, f"/aws/lambda/{name}", start, end, max_events, REPORT_PATTERN)
        try:
            found.extend(intervals_of(node, events))
        except ClientError as error:
            log.warning("reports not read", function=name, error=error_code(error))
    return found


def mined_topology(intervals: Sequence[Interval]) -> Topology:
    """The heuristic topology of Lambda functions from their invocation intervals."""
    kinds = {i.node: "function" for i in intervals}
    return from_timing(intervals, kinds, slack=SLACK_S)
