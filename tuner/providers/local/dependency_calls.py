"""Dependency calls made by the host for a handler, so that their latency and errors are measured.

A handler's ``context.dependency(name).get(path)`` asks the host; the host calls the
named dependency, times the call and answers with the body.  A handler therefore cannot
report an outage (or a fast answer) that did not happen.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

CONNECT_TIMEOUT_S = 2.0
"""The longest a single call may take (less when the invocation's deadline is nearer)."""
_MIN_TIMEOUT_S = 0.05


@dataclass(frozen=True, slots=True)
class Answer:
    """What a dependency call gave: the decoded JSON body, or an error, and how long it took."""

    value: Any
    error: str
    latency_ms: float


def checked_path(path: object) -> str:
    """The path as given when it is a plain absolute path; ValueError otherwise.

    It must not change the URL's host (``@elsewhere``) or carry control characters.
    """
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
        raise ValueError(f"a dependency path must start with one '/': {str(path)[:60]!r}")
    if any(ord(char) < 33 or char in "\\@" for char in path):
        raise ValueError(f"invalid character in dependency path {path[:60]!r}")
    return path


def call(url: str, path: str, deadline: float, max_bytes: int) -> Answer:
    """GET ``url + path`` within the deadline; at most ``max_bytes`` of body are read."""
    started = time.monotonic()
    timeout = max(_MIN_TIMEOUT_S, min(CONNECT_TIMEOUT_S, deadline - started))
    try:
        with urllib.request.urlopen(url.rstrip("/") + path, timeout=timeout) as response:
            data = response.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ValueError(f"answer over {max_bytes} bytes")
        value, error = (json.loads(data) if data else None), ""
    except (urllib.error.URLError, OSError, ValueError) as failure:
        reason = getattr(failure, "reason", failure)
        value, error = None, f"{type(failure).__name__}: {reason}"
    return Answer(value, error, (time.monotonic() - started) * 1000)
