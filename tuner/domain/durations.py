"""Durations: one grammar for every file and flag that takes a length of time.

A duration is a number of seconds, or a text of one or more parts with units:
``90``, ``500ms``, ``30s``, ``15m``, ``1h30m``, ``1.5h``, ``7d``.  Rule files, ``tuner.yaml``,
notification settings, TuningPolicies and the command line all read durations here.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

_PART = r"(\d+(?:\.\d+)?)(ms|s|m|h|d)"
_PARTS = re.compile(_PART)
PATTERN = rf"^\s*(\d+(?:\.\d+)?|({_PART})+)\s*$"
"""The text form, as the JSON Schema states it."""
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_EXAMPLES = "e.g. 90, 30s, 15m, 1h30m, 7d"


def parse_duration(value: Any) -> float:
    """Seconds from a number or a text such as ``30s``, ``15m``, ``1h30m`` or ``500ms``."""
    if isinstance(value, bool):
        raise ValueError(f"a duration is a number of seconds or a text ({_EXAMPLES})")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            parts = _PARTS.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"not a duration: {value!r} ({_EXAMPLES})")
            seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    else:
        raise ValueError(f"a duration is a number of seconds or a text ({_EXAMPLES})")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be finite and not negative: {value!r}")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": PATTERN}]}
    ),
]
"""A duration in seconds, written as a number or with units (``30s``, ``15m``, ``1h30m``)."""
