"""Start-up conflicts end in one clear line and exit 2: the store first, then the ports.

A second daemon on a store that another holds stops at its claim, before it starts
anything (its local host would otherwise take the same port and state first).  A port
that someone else holds is one line naming the setting.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tuner.cli.main import main

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """``tuner run`` points the logs at this test's captured stderr: undo that after."""
    yield
    structlog.reset_defaults()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config(tmp_path: Path, name: str, port: int) -> Path:
    """A daemon on a local host with one function and a fixed ``http_port``."""
    functions = tmp_path / "host" / "functions" / "hello"
    functions.mkdir(parents=True, exist_ok=True)
    (functions / "handler.py").write_text("def handler(event, context):\n    return 'hi'\n")
    (functions / "function.yaml").write_text("memory_mb: 128\n")
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(
        f"store: {tmp_path / name / 'tuner.db'}\ninterval: 1s\n"
        "providers:\n"
        f"  - {{type: local, functions_dir: {tmp_path / 'host'}, state_dir: {tmp_path / name},"
        f" traffic: false, http_port: {port}, cgroups: false}}\n"
    )
    return cfg


def one_line_refusal(capsys: pytest.CaptureFixture[str], cfg: Path) -> str:
    assert main(["run", "-c", str(cfg), "--for", "2s", "--http", "off"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def test_a_second_daemon_with_a_fixed_http_port_stops_at_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    cfg = config(tmp_path, "first", port)
    first = subprocess.Popen(
        [sys.executable, "-m", "tuner.cli.main", "run", "-c", str(cfg), "--http", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert first.stdout is not None
        for line in first.stdout:  # up once it says how to call its endpoint
            if "local invoke endpoint" in line:
                break
        err = one_line_refusal(capsys, cfg)
        assert "in use by another tuner" in err and str(tmp_path / "first" / "tuner.db") in err
        assert first.poll() is None  # the first one runs on
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)


def test_a_port_held_by_someone_else_is_one_line_naming_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        err = one_line_refusal(capsys, config(tmp_path, "second", port))

    assert err == (
        f"local provider: field 'http_port': cannot listen on 127.0.0.1:{port}:"
        " Address already in use; choose another port or 0"
    )
