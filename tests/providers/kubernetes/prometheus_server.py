"""Debian's Prometheus server scraping one local exporter every second, for the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tuner.providers.prometheus import PrometheusClient


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def prometheus_binary() -> str:
    """The installed server; the test fails (never skips) without it."""
    found = shutil.which("prometheus")
    if not found:
        pytest.fail("prometheus is missing: apt-get install --no-install-recommends prometheus")
    return found


@contextmanager
def scraping(exporter_port: int, folder: Path) -> Iterator[str]:
    """A Prometheus server scraping ``127.0.0.1:exporter_port`` every second; yields its URL."""
    config = folder / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: pods\n    static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            prometheus_binary(),
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_for(client: PrometheusClient, promql: str, accept: Any, timeout: float = 20) -> None:
    """Wait until the query's first sample is accepted; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            samples = client.query(promql, time.time())
        except Exception:  # noqa: BLE001 - the server may still be starting
            samples = []
        if samples and accept(samples[0].value):
            return
        time.sleep(0.2)
    pytest.fail(f"prometheus never answered {promql} as expected")
