"""Who calls whom in a namespace, mined from request histograms in Debian's Prometheus."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from kube_emulation import EmulatorThread, WallClock, cluster_client
from kube_objects import deployment, pod, seed
from prometheus_backfill import Service, backfilled_prometheus, openmetrics, requests_per_second

from tuner.cli.main import main
from tuner.domain.errors import ProviderError
from tuner.providers.kubernetes import Settings, build
from tuner.providers.kubernetes.provider import KubernetesProvider
from tuner.providers.kubernetes.timing import service_of_pod

NAMESPACE = "shop"
SECONDS = 300
SERVICES = (
    # frontend -> cart -> db-proxy -> postgres, frontend -> recommend; batch on its own
    Service(
        "frontend",
        ["frontend-7d9f8c6b5-abcde", "frontend-7d9f8c6b5-old12"],  # the second is gone
        0.2,
        {"cart": 0.9, "recommend": 0.5},
        own_rate=20.0,
    ),
    Service("cart", ["cart-5c8d7f9b4-fghij"], 0.08, {"db-proxy": 0.9}),
    Service("recommend", ["recommend-6f7b8d9c5-klmno"], 0.04, {}),
    Service("db-proxy", ["db-proxy-84c9d7b6f5-pqrst"], 0.03, {"postgres": 1.0}),
    Service("postgres", ["postgres-0"], 0.008, {}),
    Service("batch", ["batch-59d8c7b6a4-uvwxy"], 0.6, {}, own_rate=5.0),
)
TRUE_EDGES = {
    ("frontend", "cart"),
    ("frontend", "recommend"),
    ("cart", "db-proxy"),
    ("db-proxy", "postgres"),
}


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """The command points the logs at this test's captured stderr: put the session's back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float, float]]:
    """Prometheus with the graph's last five minutes; yields its URL and the window."""
    end = int(time.time()) - 60
    start = end - SECONDS
    counts = requests_per_second(SERVICES, SECONDS)
    text = openmetrics(SERVICES, counts, NAMESPACE, start)
    with backfilled_prometheus(tmp_path_factory.mktemp("prometheus"), text) as url:
        yield url, float(start), float(end)


@pytest.fixture(scope="module")
def cluster_url(cluster: EmulatorThread) -> str:
    """The emulated cluster with the graph's Deployments (postgres is not one) and live pods."""
    objects = []
    for service in SERVICES:
        if service.name == "postgres":
            continue
        objects.append(deployment(service.name, NAMESPACE))
        objects.append(pod(service.pods[0], NAMESPACE, {"app": service.name}))
    for kube in cluster_client(cluster):
        seed(kube, *objects)
    return cluster.url


def provider(url: str, prometheus_url: str, **options: object) -> KubernetesProvider:
    fields: dict[str, object] = {
        "namespace": NAMESPACE,
        "api_url": url,
        "prometheus_url": prometheus_url,
        "latency_metric": "http_request_duration_seconds",
        "timing_step_s": 1.0,
    }
    settings = Settings.model_validate({**fields, **options})
    built = build(settings, clock=WallClock())
    assert isinstance(built, KubernetesProvider)
    return built


def test_request_rates_give_the_true_edges_with_a_confidence(
    prometheus: tuple[str, float, float], cluster_url: str
) -> None:
    url, start, end = prometheus
    tuned = provider(cluster_url, url)
    try:
        topology = tuned.timing_topology(start, end)
    finally:
        tuned.close()

    edges = {(e.source, e.target): e for e in topology.edges}
    assert set(edges) == TRUE_EDGES  # no frontend -> db-proxy, nothing from slow batch
    for edge in edges.values():
        assert edge.evidence == "timing"
        assert 0.9 <= edge.confidence < 1.0  # calibrated: never certain
    counts = requests_per_second(SERVICES, SECONDS)
    cart_calls = edges[("frontend", "cart")].calls
    assert abs(cart_calls - sum(counts["cart"])) < 0.1 * sum(counts["cart"])
    assert edges[("cart", "db-proxy")].p95_ms == pytest.approx(50.0, rel=0.1)  # its bucket
    kinds = {n.id: n.kind for n in topology.nodes}
    assert kinds["postgres"] == "dependency"  # not a workload tuner manages
    assert kinds["frontend"] == kinds["batch"] == "function"


def test_tuner_topology_reads_a_namespace_from_prometheus(
    prometheus: tuple[str, float, float],
    cluster_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, start, _ = prometheus
    config = tmp_path / "tuner.yaml"
    config.write_text(
        "providers:\n  - type: kubernetes\n"
        f"    namespace: {NAMESPACE}\n    api_url: {cluster_url}\n"
        f"    prometheus_url: {url}\n    latency_metric: http_request_duration_seconds\n"
        "    timing_step_s: 1\n"
    )
    since = f"{int(time.time() - start) + 1}s"

    assert main(["topology", "-c", str(config), "--source", "timing", "--since", since]) == 0

    shown = json.loads(capsys.readouterr().out)
    assert {(e["source"], e["target"]) for e in shown["edges"]} == TRUE_EDGES
    assert {e["evidence"] for e in shown["edges"]} == {"timing"}


def test_without_a_latency_histogram_it_says_what_is_missing(
    prometheus: tuple[str, float, float], cluster_url: str
) -> None:
    url, start, end = prometheus
    tuned = provider(cluster_url, url, latency_metric=None)
    with pytest.raises(ProviderError, match="latency_metric"):
        tuned.timing_topology(start, end)


def test_a_gone_pod_belongs_to_its_deployment_by_name() -> None:
    workloads = {"cart", "cart-api"}
    assert service_of_pod("cart-api-5c8d7f9b4-zzzzz", {}, workloads) == "cart-api"
    assert service_of_pod("x-1", {"x-1": "cart"}, workloads) == "cart"
    assert service_of_pod("postgres-0", {}, workloads) == "postgres"
    assert service_of_pod("search-6f7b8d9c5-klmno", {}, workloads) == "search"
