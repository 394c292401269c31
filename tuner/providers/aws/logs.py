"""Reading a function's Lambda log lines, only for the functions that need it."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import structlog

from tuner.model import Target
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


def read_summary(
    clients: RegionClients, name: str, start: float, end: float, max_events: int
) -> LogSummary | None:
    """A summary of the function's Lambda lines in the window, or None when unreadable.

    Logs only add detail to the metrics, so a missing or forbidden log group leaves the
    log-only facts unknown instead of failing the whole fleet's observation.
    """
    from botocore.exceptions import ClientError

    lines = _log_lines(clients, f"/aws/lambda/{name}", start, end, max_events)
    try:
        return summarize(lines)
    except ClientError as error:
        log.warning("logs not read", function=name, error=error_code(error))
        return None


def _log_lines(
    clients: RegionClients, group: str, start: float, end: float, max_events: int
) -> Iterator[str]:
    request: dict[str, Any] = {
        "logGroupName": group,
        "startTime": int(start * 1000),
        "endTime": int(end * 1000),
        "filterPattern": FILTER_PATTERN,
    }
    read = 0
    while True:
        clients.logs_bucket.acquire()
        page = clients.logs.filter_log_events(**request)
        for event in page.get("events", []):
            yield str(event.get("message", ""))
            read += 1
            if read >= max_events:
                log.warning("log events capped", group=group, events=read)
                return
        token = page.get("nextToken")
        if not token:
            return
        request["nextToken"] = token
