"""Time: the lengths tuner counts in, and the one way a time is written for people.

Times are POSIX seconds everywhere inside tuner.  People read them as ISO 8601 in UTC to
the second (``2026-11-30T17:41:00Z``): in ``tuner explain``, the JSON API, messages and
the dashboard alike.
"""

from __future__ import annotations

from datetime import UTC, datetime

MINUTE_S = 60.0
HOUR_S = 3_600.0
DAY_S = 86_400.0


def iso(t: float) -> str:
    """A time in seconds as ISO 8601 UTC, to the second: ``2026-11-30T17:41:00Z``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
