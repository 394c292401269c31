"""The operator against the emulated API server: policies, OOM reaction, status, problems."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_emulation import EmulatorThread
from kube_objects import deployment, pod, pod_metrics, seed
from operator_threads import OperatorThread, eventually

from tuner.providers.kubernetes.api import KubeApi, NotFoundError

NAMESPACE = "shop"
POLICIES = f"/apis/tuner.dev/v1alpha1/namespaces/{NAMESPACE}/tuningpolicies"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmulatorThread]:
    emulated = EmulatorThread().start()
    yield emulated
    emulated.stop()


@pytest.fixture(scope="module")
def kube(cluster: EmulatorThread) -> Iterator[KubeApi]:
    api = KubeApi(cluster.url)
    yield api
    api.close()


@pytest.fixture(scope="module")
def operator(
    cluster: EmulatorThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorThread]:
    replica = OperatorThread(cluster, "solo", tmp_path_factory.mktemp("state")).start()
    eventually(lambda: replica.state.elector.is_leader)
    yield replica
    replica.stop()


def policy(name: str, namespace: str = NAMESPACE, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tuner.dev/v1alpha1",
        "kind": "TuningPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def status_of(kube: KubeApi, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    try:
        path = f"/apis/tuner.dev/v1alpha1/namespaces/{namespace}/tuningpolicies/{name}"
        return kube.get(path).get("status") or {}
    except NotFoundError:
        return {}


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def memory_limit(kube: KubeApi, name: str, namespace: str = NAMESPACE) -> str:
    live = kube.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    return str(live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])


def test_an_oom_killed_pod_gets_its_deployment_more_memory_within_seconds(
    operator: OperatorThread, kube: KubeApi
) -> None:
    seed(
        kube,
        deployment("api", NAMESPACE, memory="256Mi"),
        pod("api-1", NAMESPACE, {"app": "api"}),
        pod_metrics("api-1", NAMESPACE, "250Mi"),
    )
    seed(kube, policy("api", mode="apply", selector={"matchLabels": {"tuner.dev/enabled": "true"}}))
    first = eventually(lambda: status_of(kube, "api").get("lastCycle"))
    assert condition(status_of(kube, "api"), "Ready")["status"] == "True"
    assert memory_limit(kube, "api") == "256Mi"  # no OOM yet: nothing to do

    killed_at = time.time()
    kube.patch(
        f"/api/v1/namespaces/{NAMESPACE}/pods/api-1",
        pod("api-1", NAMESPACE, {"app": "api"}, oom_at=killed_at, restarts=1),
    )
    eventually(lambda: memory_limit(kube, "api") != "256Mi", timeout=8)
    reacted_s = time.time() - killed_at

    assert reacted_s < 5, "the pod watch, not the hourly interval, triggered the cycle"
    new_mb = int(memory_limit(kube, "api").removesuffix("Mi"))
    assert new_mb > 256
    status = eventually(lambda: (s := status_of(kube, "api")).get("applied") and s)
    assert status["lastCycle"] >= first
    assert status["counts"]["applied"] == 1
    assert status["leader"] == "solo"
    latest = status["lastDecisions"][0]
    assert (latest["rule"], latest["state"]) == ("oom", "applied")
    assert latest["change"] == f"memory_mb 256 -> {new_mb}"
    events = kube.list(f"/api/v1/namespaces/{NAMESPACE}/events")
    assert any(
        e["reason"] == "TunerChanged" and e["involvedObject"]["name"] == "api" for e in events
    )


def test_an_invalid_policy_becomes_a_condition_and_an_event(
    operator: OperatorThread, kube: KubeApi
) -> None:
    rules = (
        "version: 1\nrules:\n  - name: oom\n    when: ooms > 0.0\n    actions:\n"
        "      - action: more-memroy\n"
    )
    seed(kube, policy("broken", mode="apply", rules={"inline": rules}))

    status = eventually(lambda: (s := status_of(kube, "broken")).get("conditions") and s)
    rules_valid = condition(status, "RulesValid")
    assert rules_valid["status"] == "False"
    assert "more-memroy" in rules_valid["message"]
    assert condition(status, "Ready")["status"] == "False"
    events = eventually(
        lambda: [
            e
            for e in kube.list(f"/api/v1/namespaces/{NAMESPACE}/events")
            if e["reason"] == "InvalidPolicy" and e["involvedObject"]["name"] == "broken"
        ]
    )
    assert events[0]["type"] == "Warning"

    fixed = rules.replace("more-memroy", "more-memory")
    kube.patch(f"{POLICIES}/broken", {"spec": {"rules": {"inline": fixed}}})
    status = eventually(
        lambda: (
            condition(status_of(kube, "broken"), "RulesValid").get("status") == "True"
            and status_of(kube, "broken")
        )
    )
    assert condition(status, "Ready")["status"] == "True"


def test_a_policy_with_a_missing_config_map_is_reported_not_crashed(
    operator: OperatorThread, kube: KubeApi
) -> None:
    seed(kube, policy("elsewhere", rules={"configMapRef": {"name": "absent", "key": "r.yaml"}}))
    status = eventually(
        lambda: condition(status_of(kube, "elsewhere"), "Ready") and status_of(kube, "elsewhere")
    )
    assert "ConfigMap absent" in condition(status, "Ready")["message"]
    assert operator.state.elector.is_leader  # still running


def test_rules_from_a_config_map_and_channel_secrets_are_wired(
    operator: OperatorThread, kube: KubeApi, tmp_path: Path
) -> None:
    rules = Path(__file__).resolve().parents[2] / "rules" / "default.yaml"
    seed(
        kube,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "team-rules", "namespace": NAMESPACE},
            "data": {"rules.yaml": rules.read_text()},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "hooks", "namespace": NAMESPACE},
            "data": {"url": "aHR0cDovLzEyNy4wLjAuMTo5L2hvb2s="},
        },
    )
    seed(
        kube,
        policy(
            "team",
            mode="recommend",
            rules={"configMapRef": {"name": "team-rules", "key": "rules.yaml"}},
            channels=[
                {"name": "hook", "type": "webhook", "secretRef": {"name": "hooks", "key": "url"}}
            ],
        ),
    )
    status = eventually(
        lambda: condition(status_of(kube, "team"), "Ready") and status_of(kube, "team")
    )
    assert condition(status, "Ready")["status"] == "True", status
    secret_file = operator.settings.state_dir / NAMESPACE / "team" / "secrets" / "hook"
    assert secret_file.read_text() == "http://127.0.0.1:9/hook"
    assert secret_file.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("mode", "replicas", "outcome", "reason"),
    [
        ("recommend", 2, "recommended", None),
        ("apply", 1, "failed", "single replica"),
    ],
)
def test_decisions_that_change_nothing_are_in_the_status_too(
    operator: OperatorThread,
    kube: KubeApi,
    mode: str,
    replicas: int,
    outcome: str,
    reason: str | None,
) -> None:
    namespace = f"{mode}-{replicas}"
    seed(
        kube,
        deployment("worker", namespace, memory="256Mi", replicas=replicas),
        pod("worker-1", namespace, {"app": "worker"}, oom_at=time.time(), restarts=1),
    )
    seed(kube, policy("p", namespace, mode=mode))

    status = eventually(lambda: (s := status_of(kube, "p", namespace)).get("lastDecisions") and s)

    latest = status["lastDecisions"][0]
    assert (latest["rule"], latest["state"]) == ("oom", outcome)
    assert latest["change"].startswith("memory_mb 256 -> ")
    assert status["counts"][outcome] == 1
    if reason:
        assert reason in latest["reason"]
    assert memory_limit(kube, "worker", namespace) == "256Mi"
