"""Traffic schedules: cron fields (with seconds) to the times they fire, through APScheduler.

A function's ``traffic.schedule`` in ``function.yaml`` names cron fields, e.g.
``{second: "*/10"}`` (every ten seconds) or ``{minute: "*/5"}`` (every five minutes, at
second 0): fields finer than the finest one given are at their first value, coarser ones
match everything, as in APScheduler's ``CronTrigger``.  Times are UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from apscheduler.triggers.cron import CronTrigger

FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
"""The fields of a schedule: those of a cron expression, with seconds."""


def checked_schedule(fields: dict[str, str | int]) -> dict[str, str | int]:
    """The fields, if they make a schedule; ValueError saying what is wrong otherwise."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown schedule field {unknown[0]!r} (known: {', '.join(FIELDS)})")
    if not fields:
        raise ValueError("a schedule needs at least one field, e.g. {second: '*/10'}")
    cron_trigger(fields)
    return fields


def cron_trigger(fields: Mapping[str, str | int]) -> CronTrigger:
    """The trigger of these cron fields; ValueError naming the field that is wrong."""
    trigger_fields = {name: str(value) for name, value in fields.items()}
    try:
        return CronTrigger(timezone=UTC, **trigger_fields)
    except (ValueError, TypeError) as error:
        raise ValueError(f"not a cron schedule: {error}") from None


def next_fire(trigger: CronTrigger, after: float) -> float | None:
    """The first time (POSIX seconds) strictly after ``after`` at which the trigger fires."""
    fire = trigger.get_next_fire_time(None, datetime.fromtimestamp(after + 1e-6, UTC))
    return None if fire is None else fire.timestamp()
