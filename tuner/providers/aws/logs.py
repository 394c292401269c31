"""Reading a function's Lambda log lines, only for the functions that need it."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

import structlog

from tuner.domain.model import Target
from tuner.providers.aws.clients import RegionClients
from tuner.providers.aws.errors import error_code
from tuner.providers.aws.metrics import FunctionStats
from tuner.providers.aws.reports import FILTER_PATTERN, LogSummary, summarize
from tuner.providers.aws.settings import Settings

log = structlog.get_logger(__name__)


def flagged(stats: FunctionStats, timeout_s: float | None, near_timeout_ratio: float) -> bool:
    """True when metrics show errors or a maximum duration near the timeout."""
    if stats.get("errors", 0.0) > 0:
        return True
    duration_max = stats.get("duration_max_ms")
    return bool(
        timeout_s
        and duration_max is not None
        and duration_max >= near_timeout_ratio * timeout_s * 1000
    )


def due_for_rightsizing(name: str, cycle: int, every: int) -> bool:
    """True once every ``every`` cycles per function, spread evenly over the fleet."""
    return zlib.crc32(name.encode()) % every == cycle % every


def choose(
    targets: Sequence[Target], stats: Mapping[str, FunctionStats], cycle: int, settings: Settings
) -> list[Target]:
    """The targets whose logs to read this cycle: flagged ones first, then right-sizing.

    Functions without invocations in the window are never chosen; at most
    ``max_log_reads_per_cycle`` are.
    """
    urgent: list[Target] = []
    routine: list[Target] = []
    for target in targets:
        function_stats = stats.get(target.ref.name, {})
        if not function_stats.get("invocations"):
            continue
        if flagged(function_stats, target.config.timeout_s, settings.near_timeout_ratio):
            urgent.append(target)
        elif due_for_rightsizing(target.ref.name, cycle, settings.rightsizing_every_cycles):
            routine.append(target)
    return (urgent + routine)[: settings.max_log_reads_per_cycle]


_STREAM_VERSION = re.compile(r"^\d{4}/\d{2}/\d{2}/\[([^\]]+)\]")


def stream_version(stream: str) -> str | None:
    """The function version a Lambda log stream belongs to, e.g. ``7`` or ``$LATEST``."""
    found = _STREAM_VERSION.match(stream)
    return found.group(1) if found else None


INSIGHTS_GROUP = "/aws/lambda-insights"
"""Where Lambda Insights writes one performance event per invocation of every function."""


def read_summary(
    clients: RegionClients,
    name: str,
    start: float,
    end: float,
    max_events: int,
    *,
    insights: bool = False,
    memory_mb: float | None = None,
    version: str | None = None,
) -> LogSummary | None:
    """A summary of the function's Lambda lines in the window, or None when unreadable.

    With ``insights`` the function's Lambda Insights performance events are read too
    (they say which invocations timed out even when the function's own group is quiet).
    Logs only add detail to the metrics, so a missing or forbidden log group leaves the
    log-only facts unknown instead of failing the whole fleet's observation.  With
    ``memory_mb``, only invocations that ran at that size count (see ``summarize``).  With
    ``version``, only the lines of that published version count: Lambda names each log
    stream ``YYYY/MM/DD/[version]id``, and Insights events, which do not say, are left out.
    """
    from botocore.exceptions import ClientError

    events = log_events(clients, f"/aws/lambda/{name}", start, end, max_events, version=version)
    lines: Iterator[str] = (message for _, message in events)
    if insights and version is None:
        lines = chain(lines, _insights_lines(clients, name, start, end, max_events))
    try:
        return summarize(lines, memory_mb)
    except ClientError as error:
        log.warning("logs not read", function=name, error=error_code(error))
        return None


def _insights_lines(
    clients: RegionClients, name: str, start: float, end: float, max_events: int
) -> Iterator[str]:
    """The function's performance events in the shared Insights group (checked again here)."""
    from botocore.exceptions import ClientError

    pattern = f'{{ $.function_name = "{name}" }}'
    try:
        for _, line in log_events(clients, INSIGHTS_GROUP, start, end, max_events, pattern):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("function_name") == name:
                yield line
    except ClientError as error:  # no Insights group: the function's own lines still count
        log.warning("insights events not read", function=name, error=error_code(error))


def log_events(
    clients: RegionClients,
    group: str,
    start: float,
    end: float,
    max_events: int,
    pattern: str = FILTER_PATTERN,
    version: str | None = None,
) -> Iterator[tuple[float, str]]:
    """The group's events in ``[start, end]`` matching ``pattern``: (timestamp in s, message).

    With ``version``, only the events of that published version's log streams.
    """
    request: dict[str, Any] = {
        "logGroupName": group,
        "startTime": int(start * 1000),
        "endTime": int(end * 1000),
        "filterPattern": pattern,
    }
    read = 0
    while True:
        clients.logs_bucket.acquire()
        page = clients.logs.filter_log_events(**request)
        for event in page.get("events", []):
            stream = str(event.get("logStreamName", ""))
            if version is not None and stream_version(stream) != version:
                continue
            yield float(event.get("timestamp", 0)) / 1000.0, str(event.get("message", ""))
            read += 1
            if read >= max_events:
                log.warning("log events capped", group=group, events=read)
                return
        token = page.get("nextToken")
        if not token:
            return
        request["nextToken"] = token
