"""A preferred zone affinity towards a far dependency, through the daemon, against the emulator.

The world: nodes in zone-a and zone-b; the ``api`` Deployment's pods run in zone-a; the
``orders-db`` Service's ready endpoint runs in zone-b.  Debian's Prometheus scrapes an
exporter that a thread keeps feeding: api's own request latency, api's client-side calls
to orders-db (as its pods see them) and orders-db's own latency at its pods.  Seen from
api, orders-db answers in ~40 ms, of which it spends ~3 ms itself: distance.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_emulation import EmulatorThread
from kube_objects import deployment, endpoint_slice, node, pod, seed, service
from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_server import free_port, scraping, wait_for

from tuner.daemon.config import parse_config
from tuner.daemon.wiring import Tuner, build
from tuner.domain.lifecycle import State
from tuner.domain.model import Knob
from tuner.providers.kubernetes.affinity import AFFINITY_ANNOTATION
from tuner.providers.kubernetes.api import KubeApi
from tuner.providers.prometheus import PrometheusClient

pytestmark = pytest.mark.slow

INTERVAL_S = 3.0
DEPLOYMENTS = "/apis/apps/v1/namespaces/{ns}/deployments"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.08, 0.1, 0.15, 0.25, 0.5, 1.0)


class Feeder:
    """An exporter whose histograms a thread keeps observing, at latencies a test can change."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.own = Histogram(
            "http_request_duration_seconds",
            "served",
            ["namespace", "pod"],
            registry=self.registry,
            buckets=BUCKETS,
        )
        self.client = Histogram(
            "http_client_request_duration_seconds",
            "calls made",
            ["namespace", "pod", "server_address"],
            registry=self.registry,
            buckets=BUCKETS,
        )
        self.seen_from_api: dict[str, float] = {}
        """Namespace -> the latency (s) api's pods see orders-db answer with."""
        self.port = free_port()
        self.server, _ = start_http_server(self.port, "127.0.0.1", self.registry)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for namespace, latency in list(self.seen_from_api.items()):
                for name in ("api-1", "api-2"):
                    self.own.labels(namespace, name).observe(latency + 0.01)
                    self.client.labels(namespace, name, "orders-db").observe(latency)
                self.own.labels(namespace, "orders-db-0").observe(0.003)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def feeder() -> Iterator[Feeder]:
    running = Feeder()
    yield running
    running.close()


@pytest.fixture(scope="module")
def prometheus(feeder: Feeder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with scraping(feeder.port, tmp_path_factory.mktemp("prometheus")) as url:
        yield url


@pytest.fixture(scope="module")
def zones(cluster: EmulatorThread) -> None:
    kube = KubeApi(cluster.url)
    try:
        seed(kube, node("node-a", "zone-a"), node("node-b", "zone-b"))
    finally:
        kube.close()


def the_world(kube: KubeApi, namespace: str, *, ready: bool = True) -> None:
    api = deployment("api", namespace)
    api["spec"]["template"]["spec"]["affinity"] = {  # a person's own preference, kept as it is
        "podAntiAffinity": {
            PREFERRED: [
                {
                    "weight": 10,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"app": "api"}},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    }
    seed(
        kube,
        api,
        pod("api-1", namespace, {"app": "api"}, node="node-a"),
        pod("api-2", namespace, {"app": "api"}, node="node-a"),
        service("orders-db", namespace, {"app": "orders-db"}),
        pod("orders-db-0", namespace, {"app": "orders-db"}, node="node-b"),
        endpoint_slice("orders-db", namespace, [("orders-db-0", "node-b", ready)]),
    )


def daemon(cluster: EmulatorThread, prometheus: str, namespace: str, tmp_path: Path) -> Tuner:
    config = {
        "mode": "apply",
        "interval": f"{INTERVAL_S:g}s",
        "store": str(tmp_path / "tuner.db"),
        "verify": {"windows": 2},
        "providers": [
            {
                "type": "kubernetes",
                "namespace": namespace,
                "api_url": cluster.url,
                "prometheus_url": prometheus,
                "latency_metric": "http_request_duration_seconds",
                "dependency_metric": "http_client_request_duration_seconds",
                "rollout_timeout_s": 5,
            }
        ],
    }
    text = yaml.safe_dump(config)
    tuner = build(parse_config(text, str(tmp_path / "tuner.yaml")))
    tuner.start()
    return tuner


def template(kube: KubeApi, namespace: str) -> dict[str, Any]:
    live = kube.get(f"{DEPLOYMENTS.format(ns=namespace)}/api")
    return copy.deepcopy(live["spec"]["template"]["spec"])


def annotations(kube: KubeApi, namespace: str) -> dict[str, str]:
    live = kube.get(f"{DEPLOYMENTS.format(ns=namespace)}/api")
    found: dict[str, str] = live["metadata"].get("annotations") or {}
    return found


def cycles_until(tuner: Tuner, done: Any, most: int = 12) -> None:
    for _ in range(most):
        report = tuner.daemon.run_cycle()
        assert report.errors == []
        if done():
            return
        time.sleep(INTERVAL_S)
    pytest.fail("the daemon never got there")


def affinity_decisions(tuner: Tuner) -> list[Any]:
    return [
        d
        for d in tuner.store.decisions(limit=1000)
        if d.change is not None and d.change.knob is Knob.ZONE_AFFINITY
    ]


def applied(tuner: Tuner) -> bool:
    return any(d.applied for d in affinity_decisions(tuner))


class World:
    """One test's namespace of the world, with the daemon over it."""

    def __init__(
        self,
        cluster: EmulatorThread,
        kube: KubeApi,
        feeder: Feeder,
        prometheus: str,
        tmp_path: Path,
    ) -> None:
        self.cluster, self.kube, self.feeder = cluster, kube, feeder
        self.prometheus, self.tmp_path = prometheus, tmp_path

    def start(self, namespace: str, *, ready: bool = True) -> Tuner:
        """Seed the namespace, feed api's calls at 40 ms and start a daemon over it."""
        the_world(self.kube, namespace, ready=ready)
        self.feeder.seen_from_api[namespace] = 0.04
        wait_for(
            PrometheusClient(self.prometheus),
            f'sum(rate(http_client_request_duration_seconds_count{{namespace="{namespace}"}}[3s]))',
            lambda v: v > 0,
        )
        return daemon(self.cluster, self.prometheus, namespace, self.tmp_path)


@pytest.fixture()
def world(
    cluster: EmulatorThread,
    kube: KubeApi,
    feeder: Feeder,
    prometheus: str,
    zones: None,
    tmp_path: Path,
) -> World:
    return World(cluster, kube, feeder, prometheus, tmp_path)


def test_a_far_dependency_gets_a_preferred_affinity_and_a_worse_one_is_rolled_back_exactly(
    world: World,
) -> None:
    namespace, kube, cluster = "shop-rollback", world.kube, world.cluster
    tuner = world.start(namespace)
    before = template(kube, namespace)
    try:
        cycles_until(tuner, lambda: applied(tuner))
        change = affinity_decisions(tuner)[0]
        assert change.rule == "data-distance" and change.change.after == 100
        assert "orders-db" in change.summary and "zone-b" in change.summary
        terms = template(kube, namespace)["affinity"]["podAffinity"][PREFERRED]
        assert terms == [
            {
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"app": "orders-db"}},
                    "topologyKey": "topology.kubernetes.io/zone",
                },
            }
        ]
        assert (
            template(kube, namespace)["affinity"]["podAntiAffinity"]
            == (before["affinity"]["podAntiAffinity"])
        )
        world.feeder.seen_from_api[namespace] = 0.12  # the new zone is worse: 3x slower
        time.sleep(INTERVAL_S + 1)
        cycles_until(
            tuner,
            lambda: any(d.state is State.ROLLED_BACK for d in affinity_decisions(tuner)),
        )
    finally:
        tuner.close()
    assert template(kube, namespace) == before  # exactly as it was, the person's term too
    assert AFFINITY_ANNOTATION not in annotations(kube, namespace)
    patches = [
        r.data
        for r in cluster.requests()
        if r.method == "PATCH" and r.resource == "apps/v1/deployments" and r.namespace == namespace
    ]
    assert patches and not any("requiredDuringScheduling" in str(p) for p in patches)


def test_a_persons_change_of_the_affinity_is_never_undone(world: World) -> None:
    namespace, kube = "shop-person", world.kube
    tuner = world.start(namespace)
    try:
        cycles_until(tuner, lambda: applied(tuner))
        spec = template(kube, namespace)
        spec["affinity"]["podAffinity"][PREFERRED][0]["weight"] = 40  # kubectl edit
        path = f"{DEPLOYMENTS.format(ns=namespace)}/api"
        kube.patch(path, {"spec": {"template": {"spec": {"affinity": spec["affinity"]}}}})
        world.feeder.seen_from_api[namespace] = 0.12
        time.sleep(INTERVAL_S + 1)
        cycles_until(tuner, lambda: affinity_decisions(tuner)[0].state is not State.APPLIED)
        judged = affinity_decisions(tuner)
    finally:
        tuner.close()
    assert [d.state for d in judged] == [State.WORSE]  # judged, kept, and no rollback
    weights = [t["weight"] for t in template(kube, namespace)["affinity"]["podAffinity"][PREFERRED]]
    assert weights == [40]


def test_a_dependency_without_ready_endpoints_gets_no_decision(world: World) -> None:
    namespace, kube = "shop-unready", world.kube
    tuner = world.start(namespace, ready=False)
    before = template(kube, namespace)
    try:
        for _ in range(4):
            report = tuner.daemon.run_cycle()
            assert report.errors == []
            time.sleep(INTERVAL_S)
        provider = tuner.providers[0]
        now = time.time()
        [window] = provider.observe(provider.targets(), now - INTERVAL_S, now).values()
        decisions = tuner.store.decisions(limit=1000)
    finally:
        tuner.close()
    seen = window.dependencies["orders-db"]  # measured as the pods saw it...
    assert seen.calls > 0 and seen.latency_p95_ms is not None and seen.latency_p95_ms > 20
    assert "distance_share" not in window.extra  # ...but it has no zone to be near
    assert [d for d in decisions if d.rule == "data-distance"] == []
    assert template(kube, namespace) == before
