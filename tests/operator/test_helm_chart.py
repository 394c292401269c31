"""The Helm chart: lint, render, validate the manifests, and check what they grant and mount."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from operators.policies import TuningPolicySpec

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tuner"
K8S_VERSION = "1.30.0"


def helm_binary() -> str:
    """helm on PATH or in the venv (scripts/install_helm.py puts it there)."""
    found = shutil.which("helm") or shutil.which("helm", path=os.path.dirname(sys.executable))
    if not found:
        pytest.fail("helm is missing: run `python scripts/install_helm.py .venv/bin`")
    return found


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=60)


def render(*sets: str) -> list[dict[str, Any]]:
    args = ["template", "t", str(CHART), "--namespace", "tuner-system", "--include-crds"]
    for item in sets:
        args += ["--set", item]
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_helm_lint_is_clean() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "sets",
    [
        (),
        (
            "notifications.slack.existingSecret=slack",
            "notifications.smtp.existingSecret=smtp",
            "rbac.knative=false",
            "replicaCount=1",
        ),
    ],
)
def test_every_rendered_manifest_is_valid_kubernetes(sets: tuple[str, ...]) -> None:
    docs = render(*sets)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "CustomResourceDefinition",
            "Deployment",
            "Role",
            "RoleBinding",
            "ServiceAccount",
        ]
    )
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_values_outside_the_schema_are_refused() -> None:
    result = helm(
        "template", "t", str(CHART), "--set", "securityContext.readOnlyRootFilesystem=false"
    )
    assert result.returncode != 0
    assert "readOnlyRootFilesystem" in result.stderr
    assert helm("template", "t", str(CHART), "--set", "replicaCount=0").returncode != 0


def test_the_operator_runs_non_root_read_only_with_probes_and_resources() -> None:
    deployment = by_kind(render(), "Deployment")[0]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["port"] == "health"
    assert container["resources"]["limits"]["memory"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/var/lib/tuner", "/tmp", "/etc/tuner/rules"} <= mounts


def test_slack_and_smtp_credentials_come_from_secret_references() -> None:
    docs = render(
        "notifications.slack.existingSecret=team-slack",
        "notifications.smtp.existingSecret=mail",
        "notifications.smtp.key=pw",
    )
    env = {
        e["name"]: e
        for e in by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["SLACK_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "team-slack",
        "key": "webhook-url",
    }
    assert env["SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "mail", "key": "pw"}
    assert "SLACK_WEBHOOK_URL" not in {
        e["name"]
        for e in by_kind(render(), "Deployment")[0]["spec"]["template"]["spec"]["containers"][0][
            "env"
        ]
    }


def test_rbac_grants_only_what_tuner_uses() -> None:
    docs = render()
    granted = {
        (group, resource, verb)
        for role in by_kind(docs, "ClusterRole") + by_kind(docs, "Role")
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert not any(verb in ("*", "delete", "update", "deletecollection") for _, _, verb in granted)
    assert not any("*" in (group, resource) for group, resource, _ in granted)
    assert ("apps", "deployments", "patch") in granted
    assert ("", "pods", "watch") in granted
    assert ("coordination.k8s.io", "leases", "patch") in granted
    assert ("", "secrets", "list") not in granted
    lease_role = by_kind(docs, "Role")[0]
    assert lease_role["metadata"]["namespace"] == "tuner-system"
    assert [r["resources"] for r in lease_role["rules"]] == [["leases"]]


def test_the_chart_ships_the_bundled_rules() -> None:
    bundled = (REPO / "rules" / "default.yaml").read_text()
    assert (CHART / "files" / "default-rules.yaml").read_text() == bundled
    config_map = by_kind(render(), "ConfigMap")[0]
    assert config_map["data"]["default.yaml"] == bundled.rstrip("\n")


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load((CHART / "crds" / "tuningpolicies.tuner.dev.yaml").read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {
            "mode": "apply",
            "kinds": ["deployment"],
            "selector": {
                "matchLabels": {"tier": "web"},
                "matchExpressions": [{"key": "team", "operator": "Exists"}],
            },
            "interval": "1m",
            "rules": {"configMapRef": {"name": "r", "key": "rules.yaml"}},
            "limits": {"memoryMinMb": 128, "memoryMaxMb": 4096, "allowSingleReplicaRestart": True},
            "channels": [
                {"name": "s", "type": "slack", "secretRef": {"name": "s", "key": "url"}},
                {"name": "m", "type": "email", "options": {"host": "smtp", "to": ["a@b.c"]}},
            ],
            "prometheus": {"url": "http://prometheus:9090", "latencyMetric": "http_seconds"},
        },
    ],
)
def test_the_crd_and_the_operator_accept_the_same_policies(spec: dict[str, Any]) -> None:
    jsonschema.validate({"spec": spec}, crd_schema())
    TuningPolicySpec.model_validate(spec)


def test_the_crd_refuses_an_unknown_mode() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"spec": {"mode": "yolo"}}, crd_schema())
