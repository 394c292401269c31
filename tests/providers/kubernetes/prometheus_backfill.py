"""Debian's Prometheus holding request histograms of a known call graph, backfilled with promtool.

Each service's requests per second follow its callers' (each request to a caller calls the
callee with some probability), so the series carry the graph the way a real cluster's
would; ``promtool tsdb create-blocks-from openmetrics`` writes them as TSDB blocks, and
the server is started on that data folder.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
METRIC = "http_request_duration_seconds"


@dataclass(frozen=True)
class Service:
    """A service of the graph: its pods, its callees (with the share of requests that call)."""

    name: str
    pods: Sequence[str]
    duration_s: float
    calls: Mapping[str, float]
    own_rate: float = 0.0
    """Mean requests per second from outside the graph (entry points, other callers)."""


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: Knuth's product of uniforms, a normal approximation above a mean of 50."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def requests_per_second(
    services: Sequence[Service], seconds: int, seed: int = 3
) -> dict[str, list[int]]:
    """Each service's requests in each second: its own traffic plus what its callers send.

    ``services`` must list callers before their callees.
    """
    rng = random.Random(seed)
    counts = {s.name: [0] * seconds for s in services}
    for service in services:
        if service.own_rate:
            level = service.own_rate
            for t in range(seconds):
                level = max(1.0, level + rng.gauss(0, 0.2 * service.own_rate))
                level += 0.1 * (service.own_rate - level)
                counts[service.name][t] += poisson(rng, level)
        for callee, share in service.calls.items():
            for t in range(seconds):
                made = sum(rng.random() < share for _ in range(counts[service.name][t]))
                counts[callee][t] += made
    return counts


def openmetrics(
    services: Sequence[Service], counts: Mapping[str, list[int]], namespace: str, start: int
) -> str:
    """The histograms of every pod at every second, as OpenMetrics text (requests split over pods)."""
    lines = [f"# TYPE {METRIC} histogram"]
    for service in services:
        bucket = next((b for b in BUCKETS if service.duration_s <= b), math.inf)
        for index, pod in enumerate(service.pods):
            total = 0
            for t, count in enumerate(counts[service.name]):
                total += count // len(service.pods) + (index < count % len(service.pods))
                labels = f'namespace="{namespace}",pod="{pod}"'
                stamp = start + t
                for le in (*BUCKETS, math.inf):
                    value = total if le >= bucket else 0
                    edge = "+Inf" if le == math.inf else f"{le}"
                    lines.append(f'{METRIC}_bucket{{{labels},le="{edge}"}} {value} {stamp}')
                lines.append(f"{METRIC}_count{{{labels}}} {total} {stamp}")
                lines.append(f"{METRIC}_sum{{{labels}}} {total * service.duration_s:.3f} {stamp}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _binary(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: apt-get install --no-install-recommends prometheus")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def backfilled_prometheus(folder: Path, text: str) -> Iterator[str]:
    """Prometheus serving the OpenMetrics ``text`` (written into blocks by promtool); its URL."""
    source = folder / "series.om"
    source.write_text(text)
    data = folder / "data"
    subprocess.run(
        [_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
    )
    config = folder / "prometheus.yml"
    config.write_text("global: {scrape_interval: 15s}\n")
    port = _free_port()
    process = subprocess.Popen(
        [
            _binary("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v1/query?query=1", timeout=1) as response:
                if json.load(response).get("status") == "success":
                    return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"prometheus at {url} never became ready")
