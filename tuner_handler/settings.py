"""The settings tuner controls, as a handler reads them: environment variables of the function.

On AWS Lambda they are the function's own environment variables, which tuner changes; on
tuner's local host the host sets them from the function's live configuration.  A setting
that is absent or unreadable means "off": the handler then runs as if undecorated.
"""

from __future__ import annotations

import os

HANDOVER_ENV = "TUNER_HANDOVER_S"
"""The handover margin in seconds: hand over once less time than this (plus the longest
step so far) is left.  0 or absent: handover is off."""
MAX_LINKS_ENV = "TUNER_HANDOVER_MAX_LINKS"
"""The most links (invocations) one chain may have."""
FAN_OUT_ENV = "TUNER_FAN_OUT"
"""The number of parts a split handler's event is divided into.  1 or absent: no split."""
SPLIT_ABOVE_ENV = "TUNER_SPLIT_ABOVE_KB"
"""A split handler's event larger than this many KB (as JSON) is divided into parts of at
most about this size; a smaller one runs whole.  0 or absent: off."""
SUPPORTS_ATTRIBUTE = "__tuner_handler__"
"""Set on a decorated handler: which remedy it supports (``handover`` or ``split``)."""

DEFAULT_MAX_LINKS = 10
"""Below Lambda's recursive loop detection, which stops a chain of about 16 invocations."""
ASYNC_PAYLOAD_BYTES = 1024 * 1024
"""The largest payload of an asynchronous Lambda invocation (1 MB): the next link's event."""
SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
"""The largest payload of a synchronous Lambda invocation (6 MB): one part's event."""


def _number(name: str) -> float:
    try:
        value = float(os.environ.get(name, "0") or "0")
    except ValueError:
        return 0.0
    return value if value == value and value >= 0 else 0.0  # NaN and negatives are off


def handover_margin_s() -> float:
    """The handover margin in seconds; 0 when handover is off."""
    return _number(HANDOVER_ENV)


def max_links() -> int:
    """The most links one chain may have (at least 1)."""
    return max(1, int(_number(MAX_LINKS_ENV)) or DEFAULT_MAX_LINKS)


def fan_out() -> int:
    """The number of parts to split into; 1 when splitting is off."""
    return max(1, int(_number(FAN_OUT_ENV)))


def split_above_kb() -> float:
    """The size in KB above which an event is split; 0 when that is off."""
    return _number(SPLIT_ABOVE_ENV)
