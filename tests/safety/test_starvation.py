"""2,000 half-open connections against a running daemon with the usual 1,024 open files.

They go to the dashboard and to the local host's invoke endpoint.  The daemon must go
on cycling while they are held, never run out of files, and answer again once they go.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.safety.test_startup_conflicts import config, free_port
from tests.serving.connections import answer_to, half_open

pytestmark = pytest.mark.slow

HELD = 2000
HOLD_S = 8.0


def test_cycles_go_on_while_2000_half_open_connections_are_held(tmp_path: Path) -> None:
    dashboard = free_port()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "tuner.cli.main", "run", "-c", str(config(tmp_path, "d", 0))]
        + ["--http", f"127.0.0.1:{dashboard}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)),
    )
    cycles: list[float] = []
    endpoint: list[int] = []
    assert daemon.stdout is not None and daemon.stderr is not None
    stdout, stderr = daemon.stdout, daemon.stderr

    def read() -> None:
        for line in stdout:
            if line.startswith("[cycle "):
                cycles.append(time.monotonic())
            elif found := re.search(r"local invoke endpoint http://127.0.0.1:(\d+)", line):
                endpoint.append(int(found.group(1)))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while len(cycles) < 2 or not endpoint:
            assert time.monotonic() < deadline and daemon.poll() is None
            time.sleep(0.1)
        head = b"POST /functions/hello/invoke HTTP/1.1\r\nHost: x\r\n"
        with half_open(dashboard, HELD * 2 // 3), half_open(endpoint[0], HELD // 3, head):
            held_from = time.monotonic()
            time.sleep(HOLD_S)
            during = [t for t in cycles if t >= held_from]
        healthz = answer_to(
            dashboard, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    errors = stderr.read()

    assert len(during) >= HOLD_S / 2  # a cycle every second, give or take the load
    assert healthz.startswith(b"HTTP/1.1 200 ")
    assert "Too many open files" not in errors and "Traceback" not in errors
