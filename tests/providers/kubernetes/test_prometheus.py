"""Peak memory and request latency from Debian's Prometheus server scraping an exporter."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kube_emulation import EmulatorThread, WallClock
from kube_objects import deployment, pod, seed
from prometheus_client import CollectorRegistry, Gauge, Histogram, start_http_server
from prometheus_server import free_port, scraping, wait_for

from tuner.domain.model import FunctionRef
from tuner.providers.kubernetes import Settings, build
from tuner.providers.kubernetes.api import KubeApi
from tuner.providers.prometheus import PrometheusClient

MIB = 1024 * 1024


class Exporter:
    """A prometheus_client exporter with cAdvisor-like memory and a request histogram."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.memory = Gauge(
            "container_memory_working_set_bytes",
            "working set",
            ["namespace", "pod", "container"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "request latency",
            ["namespace", "pod"],
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.port = free_port()
        self.server, self.thread = start_http_server(self.port, "127.0.0.1", self.registry)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    exported = Exporter()
    yield exported
    exported.close()


@pytest.fixture(scope="module")
def prometheus(exporter: Exporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with scraping(exporter.port, tmp_path_factory.mktemp("prometheus")) as url:
        yield url


def test_observe_reads_peak_memory_and_latency_from_prometheus(
    exporter: Exporter, prometheus: str
) -> None:
    cluster = EmulatorThread().start()
    kube = KubeApi(cluster.url)
    try:
        seed(
            kube,
            deployment("api", "shop"),
            pod("api-1", "shop", {"app": "api"}),
            deployment("idle", "shop"),
        )
        client = PrometheusClient(prometheus)
        memory = exporter.memory.labels("shop", "api-1", "app")
        latency = exporter.latency.labels("shop", "api-1")
        memory.set(300 * MIB)
        wait_for(
            client, 'container_memory_working_set_bytes{pod="api-1"}', lambda v: v == 300 * MIB
        )
        memory.set(200 * MIB)
        for seconds in [0.02] * 8 + [0.4] * 2:
            latency.observe(seconds)
        wait_for(
            client, 'container_memory_working_set_bytes{pod="api-1"}', lambda v: v == 200 * MIB
        )
        wait_for(client, "sum(increase(http_request_duration_seconds_count[1m]))", lambda v: v > 0)

        provider = build(
            Settings(
                namespace="shop",
                api_url=cluster.url,
                prometheus_url=prometheus,
                latency_metric="http_request_duration_seconds",
            ),
            clock=WallClock(),
        )
        now = time.time()
        facts = provider.observe(provider.targets(), now - 60, now)
        provider.close()
    finally:
        kube.close()
        cluster.stop()

    api = facts[FunctionRef("kubernetes", "deployment.api", "shop")]
    assert api.peak_memory_mb == pytest.approx(300.0)  # the peak, not the last sample
    assert api.invocations is not None and 5 <= api.invocations <= 15
    assert api.duration_p50_ms is not None and api.duration_p50_ms <= 50
    assert api.duration_p99_ms is not None and 250 <= api.duration_p99_ms <= 500
    idle = facts[FunctionRef("kubernetes", "deployment.idle", "shop")]
    assert idle.peak_memory_mb is None
