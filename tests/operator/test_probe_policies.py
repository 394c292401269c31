"""Probes through the operator: a TuningPolicy turns them on, the chart grants exactly their calls."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from kube_emulation import EmulatorThread
from kube_objects import deployment, pod, seed
from operator_threads import OperatorThread, eventually
from test_helm_chart import crd_schema, granted_rules, render
from test_rbac_calls import needed

from operators.policies import TuningPolicySpec, tuner_document
from operators.runners import parse_spec
from tuner.domain.errors import ConfigError
from tuner.providers.kubernetes.api import KubeApi
from tuner.providers.kubernetes.probe_pods import PROBE_LABEL

NAMESPACE = "shop"
POLICY = f"/apis/tuner.dev/v1alpha1/namespaces/{NAMESPACE}/tuningpolicies/fleet"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
PROBE_CALLS = {("", "pods", "create"), ("", "pods", "delete")}


def probes(kube: KubeApi) -> list[dict[str, Any]]:
    """The probe pods (listed: the test's own calls are among those the chart grants)."""
    return [p for p in kube.list(PODS) if PROBE_LABEL in (p["metadata"].get("labels") or {})]


def test_pods_are_created_and_deleted_only_where_the_chart_allows_probes() -> None:
    assert PROBE_CALLS & granted_rules(render()) == set()
    assert granted_rules(render("rbac.probePods=true")) >= PROBE_CALLS


def test_a_policy_with_probes_runs_one_and_its_calls_are_granted(
    cluster: EmulatorThread, kube: KubeApi, tmp_path: Path
) -> None:
    seed(
        kube,
        deployment("api", NAMESPACE, memory="256Mi"),
        pod("api-1", NAMESPACE, {"app": "api"}, oom_at=time.time(), restarts=1),
    )
    seeded = len(cluster.requests())
    replica = OperatorThread(cluster, "solo", tmp_path).start()
    try:
        eventually(lambda: replica.state.elector.is_leader)
        seed(
            kube,
            {
                "apiVersion": "tuner.dev/v1alpha1",
                "kind": "TuningPolicy",
                "metadata": {"name": "fleet", "namespace": NAMESPACE},
                "spec": {
                    "mode": "recommend",
                    "kinds": ["deployment"],
                    "probe": {"enabled": True, "factor": 3, "for": "5m"},
                },
            },
        )
        [probe] = eventually(lambda: probes(kube), timeout=15)
        limits = probe["spec"]["containers"][0]["resources"]["limits"]
        assert limits["memory"] == "768Mi" and probe["spec"]["activeDeadlineSeconds"] == 300
        # Probes off again: the policy's tuner is rewired, and the old one deletes its probe.
        kube.patch(POLICY, {"spec": {"probe": {"enabled": False}}})
        eventually(lambda: probes(kube) == [], timeout=15)
    finally:
        replica.stop()

    made = {n for r in cluster.requests()[seeded:] if (n := needed(r)) is not None}
    made -= {("tuner.dev", "tuningpolicies", "create")}  # the test's own policy
    assert made >= PROBE_CALLS
    assert made - granted_rules(render("rbac.probePods=true")) == set()


def test_the_crd_and_the_operator_accept_the_same_probe_settings() -> None:
    spec: dict[str, Any] = {
        "probe": {"enabled": True, "factor": 4, "maxMb": 2048, "for": "10m", "maxRunning": 1}
    }
    jsonschema.validate({"spec": spec}, crd_schema())
    parsed = TuningPolicySpec.model_validate(spec)
    document = tuner_document(
        parsed,
        namespace="shop",
        name="fleet",
        api_url=None,
        rules_file=Path("r.yaml"),
        store_file=Path("t.db"),
        secret_files={},
        default_interval_s=30.0,
    )
    [provider] = document["providers"]
    assert provider["probe"] == {
        "enabled": True,
        "factor": 4.0,
        "max_mb": 2048,
        "for": 600.0,
        "max_running": 1,
    }
    for wrong in ({"factor": 0.5}, {"maxMb": 10}, {"maxRunning": 0}, {"for": "soon"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"spec": {"probe": wrong}}, crd_schema())
    # What the CRD cannot say, the operator refuses, naming the field.
    for wrong, field in (
        ({"for": "10s"}, "for"),
        ({"factor": 1}, "factor"),
        ({"every": 1}, "every"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_spec("TuningPolicy shop/fleet", {"probe": wrong})
        assert f"probe.{field}" in str(caught.value)
