"""Logs off a terminal are readable lines, like everything a command prints; JSON when asked."""

from __future__ import annotations

import io
import json

import structlog

from tuner.daemon.logs import configure


def _logged(fmt: str) -> str:
    out = io.StringIO()  # not a terminal, as when tuner run's output goes to a file
    saved = structlog.get_config()
    try:
        configure(fmt, "info", stream=out)  # type: ignore[arg-type]
        structlog.get_logger("t").warning("window out of range", function="local:greeter")
    finally:
        structlog.configure(**saved)
    return out.getvalue()


def test_off_a_terminal_the_default_is_readable_lines_not_json() -> None:
    line = _logged("auto")
    assert "window out of range" in line and "function=local:greeter" in line
    assert not line.lstrip().startswith("{")


def test_json_lines_when_asked() -> None:
    event = json.loads(_logged("json"))
    assert event["event"] == "window out of range" and event["level"] == "warning"
