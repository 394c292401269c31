"""The Helm chart: lint, render, validate the manifests, and check what they grant and mount."""

from __future__ import annotations

import os
import re
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
        pytest.fail("helm is missing: run `python scripts/install_helm.py .ci/venv/bin`")
    return found


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=60)


def render(*sets: str, values: Path | None = None) -> list[dict[str, Any]]:
    args = ["template", "t", str(CHART), "--namespace", "tuner-system", "--include-crds"]
    for item in sets:
        args += ["--set", item]
    if values is not None:
        args += ["-f", str(values)]
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [workload] = by_kind(docs, "Deployment") + by_kind(docs, "StatefulSet")
    container: dict[str, Any] = workload["spec"]["template"]["spec"]["containers"][0]
    return container


def env_of(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in operator_container(docs)["env"]}


def validate_all(docs: list[dict[str, Any]]) -> None:
    """Strict kubernetes-validate for every manifest of a Kubernetes API group."""
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a Prometheus Operator CRD: checked field by field where rendered
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def docs_values_example(tmp_path: Path) -> Path:
    """The complete values file shown in docs/kubernetes.md."""
    text = (REPO / "docs" / "kubernetes.md").read_text()
    blocks = re.findall(r"```yml\n(# values\.yaml\n.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "docs/kubernetes.md shows one complete values file"
    path = tmp_path / "values.yaml"
    path.write_text(blocks[0])
    return path


def test_helm_lint_is_clean() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "sets",
    [
        (),
        (
            "channels.team.type=slack",
            "channels.team.existingSecret=slack",
            "channels.team.secretKey=url",
            "kinds={deployment}",
            "replicaCount=1",
            "metrics.service.enabled=false",
        ),
    ],
)
def test_every_rendered_manifest_is_valid_kubernetes(sets: tuple[str, ...]) -> None:
    docs = render(*sets)
    kinds = sorted(d["kind"] for d in docs)
    expected = [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "CustomResourceDefinition",
        "Deployment",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    ]
    expected += ["ConfigMap"] if sets else ["Service"]
    assert kinds == sorted(expected)
    validate_all(docs)


def test_the_documented_complete_values_render_valid_manifests(tmp_path: Path) -> None:
    values = docs_values_example(tmp_path)
    docs = render(values=values)
    validate_all(docs)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("Service") == 2 and "StatefulSet" in kinds and "ServiceMonitor" in kinds
    [monitor] = by_kind(docs, "ServiceMonitor")
    [metrics] = [s for s in by_kind(docs, "Service") if s["metadata"]["name"].endswith("-metrics")]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert metrics["spec"]["ports"][0]["port"] == 8780
    assert metrics["spec"]["publishNotReadyAddresses"] is True
    container = operator_container(docs)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"name": "http", "containerPort": 8780, "protocol": "TCP"} in container["ports"]
    env = env_of(docs)
    assert env["TUNER_HTTP_ADDRESS"]["value"] == "0.0.0.0:8780"  # the probes' and scrapes' port
    assert "TUNER_LIVENESS_ENDPOINT" not in env
    assert env["HTTPS_PROXY"]["value"] == "http://proxy.example.com:3128"
    assert env["TUNER_KINDS"]["value"] == "deployment,ksvc"
    assert {"name": "ca", "mountPath": "/etc/ssl/corporate", "readOnly": True} in container[
        "volumeMounts"
    ]
    [statefulset] = by_kind(docs, "StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert pod["affinity"]["podAntiAffinity"]
    assert container["resources"]["limits"]["memory"] == "384Mi"


def test_values_outside_the_schema_are_refused() -> None:
    result = helm(
        "template", "t", str(CHART), "--set", "securityContext.readOnlyRootFilesystem=false"
    )
    assert result.returncode != 0
    assert "readOnlyRootFilesystem" in result.stderr
    assert helm("template", "t", str(CHART), "--set", "replicaCount=0").returncode != 0


@pytest.mark.parametrize(
    ("sets", "field"),
    [
        (("channels.team.type=slack",), "existingSecret"),  # a webhook URL only from a Secret
        (("channels.team.type=email", "channels.team.existingSecret=s"), "secretKey"),
        (("channels.Team_1.type=console",), "Team_1"),
        (("kinds={statefulset}",), "kinds"),
        ((r"rules.inline.a\.yaml=x", "rules.existingConfigMap=mine"), "rules"),
        ((r"rules.inline.a\.txt=x",), "a.txt"),
        (("metrics.serviceMonitor.enabled=true", "metrics.service.enabled=false"), "metrics"),
        (("persistence.size=lots",), "size"),
        (("probes.liveness.path=/livez",), "/healthz"),  # the operator serves fixed paths
        (("probes.readiness.path=/ready",), "/readyz"),
    ],
)
def test_values_that_cannot_work_are_refused(sets: tuple[str, ...], field: str) -> None:
    args = ["template", "t", str(CHART)]
    for item in sets:
        args += ["--set", item]
    result = helm(*args)
    assert result.returncode != 0
    assert field in result.stderr


def test_the_operator_runs_non_root_read_only_with_probes_and_resources() -> None:
    docs = render()
    pod = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
    container = operator_container(docs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["resources"]["limits"]["memory"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/var/lib/tuner", "/tmp", "/etc/tuner/rules"} <= mounts
    [state] = [v for v in pod["volumes"] if v["name"] == "state"]
    assert state["emptyDir"]["medium"] == "Memory"


def test_persistence_gives_each_replica_a_claim_of_its_own() -> None:
    docs = render(
        "persistence.enabled=true", "persistence.storageClass=fast", "persistence.size=5Gi"
    )
    assert not by_kind(docs, "Deployment")
    [statefulset] = by_kind(docs, "StatefulSet")
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert not [
        v for v in statefulset["spec"]["template"]["spec"]["volumes"] if v["name"] == "state"
    ]
    [headless] = [s for s in by_kind(docs, "Service") if s["spec"].get("clusterIP") == "None"]
    assert statefulset["spec"]["serviceName"] == headless["metadata"]["name"]
    validate_all(docs)


def test_channels_name_their_secrets_and_reach_every_policy() -> None:
    docs = render(
        "channels.team-slack.type=slack",
        "channels.team-slack.existingSecret=team-slack",
        "channels.team-slack.secretKey=webhook-url",
        "channels.mail.type=email",
        "channels.mail.existingSecret=smtp",
        "channels.mail.secretKey=pw",
        "channels.mail.options.host=smtp.example.com",
        "channels.mail.options.username=tuner",
        "channels.mail.options.from=tuner@example.com",
        "channels.mail.options.to={oncall@example.com}",
        "channels.log.type=console",
    )
    env = env_of(docs)
    assert env["TUNER_CHANNEL_TEAM_SLACK_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "team-slack",
        "key": "webhook-url",
    }
    assert env["TUNER_CHANNEL_MAIL_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "smtp",
        "key": "pw",
    }
    [config_map] = [
        c for c in by_kind(docs, "ConfigMap") if c["metadata"]["name"] == "t-tuner-channels"
    ]
    channels = yaml.safe_load(config_map["data"]["channels.yaml"])
    assert channels == {
        "team-slack": {"type": "slack", "webhook_url_env": "TUNER_CHANNEL_TEAM_SLACK_SECRET"},
        "mail": {
            "type": "email",
            "host": "smtp.example.com",
            "username": "tuner",
            "from": "tuner@example.com",
            "to": ["oncall@example.com"],
            "password_env": "TUNER_CHANNEL_MAIL_SECRET",
        },
        "log": {"type": "console"},
    }
    assert env["TUNER_CHANNELS_FILE"]["value"] == "/etc/tuner/channels/channels.yaml"
    assert not any("SECRET" in name for name in env_of(render()))
    settings = notify_settings(channels)
    assert set(settings.channels) >= {"team-slack", "mail", "log"}


def notify_settings(channels: dict[str, Any]) -> Any:
    """The channels as tuner itself validates them (secrets named, never written)."""
    from tuner.notify import load_settings

    return load_settings({"channels": channels}, "channels.yaml")


def granted_rules(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for role in by_kind(docs, "ClusterRole") + by_kind(docs, "Role")
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_rbac_grants_only_what_tuner_uses() -> None:
    docs = render()
    granted = granted_rules(docs)
    assert not any(verb in ("*", "delete", "update", "deletecollection") for _, _, verb in granted)
    assert not any("*" in (group, resource) for group, resource, _ in granted)
    assert ("tuner.dev", "tuningpolicies/status", "get") not in granted
    assert ("", "secrets", "list") not in granted
    lease_role = by_kind(docs, "Role")[0]
    assert lease_role["metadata"]["namespace"] == "tuner-system"
    assert [r["resources"] for r in lease_role["rules"]] == [["leases"]]


@pytest.mark.parametrize(
    ("kinds", "groups"),
    [
        ("{deployment}", {"apps"}),
        ("{ksvc}", {"serving.knative.dev"}),
        ("{deployment,ksvc}", {"apps", "serving.knative.dev"}),
    ],
)
def test_workload_verbs_are_granted_for_the_kinds_tuned_only(kinds: str, groups: set[str]) -> None:
    granted = granted_rules(render(f"kinds={kinds}"))
    workload_groups = {g for g, _, _ in granted if g in ("apps", "serving.knative.dev")}
    assert workload_groups == groups


def test_the_chart_ships_the_bundled_rules() -> None:
    bundled = (REPO / "rules" / "default.yaml").read_text()
    assert (CHART / "files" / "default-rules.yaml").read_text() == bundled
    config_map = by_kind(render(), "ConfigMap")[0]
    assert config_map["data"] == {"default.yaml": bundled.rstrip("\n")}


def test_rules_come_inline_or_from_an_existing_config_map() -> None:
    docs = render("rules.inline.team\\.yaml=version: 1")
    [config_map] = by_kind(docs, "ConfigMap")
    assert config_map["data"] == {"team.yaml": "version: 1"}
    docs = render("rules.existingConfigMap=platform-rules")
    assert not by_kind(docs, "ConfigMap")
    volumes = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["volumes"]
    [rules] = [v for v in volumes if v["name"] == "rules"]
    assert rules["configMap"]["name"] == "platform-rules"
    assert env_of(docs)["TUNER_DEFAULT_RULES"]["value"] == "/etc/tuner/rules"


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


def test_one_port_everywhere_and_a_default_image_the_docs_build() -> None:
    """The image exposes the port the chart serves and probes, and the chart's default image
    is the one `docs/kubernetes.md` tells people to build."""
    from operators.settings import DEFAULT_HTTP_ADDRESS

    docs = render()
    container = operator_container(docs)
    port = yaml.safe_load((CHART / "values.yaml").read_text())["metrics"]["port"]
    exposed = re.findall(r"^EXPOSE (\d+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert exposed == [str(port)] and DEFAULT_HTTP_ADDRESS.endswith(f":{port}")
    assert [p["containerPort"] for p in container["ports"]] == [port]
    [service] = [s for s in by_kind(docs, "Service") if s["spec"].get("ports")][:1]
    assert {p["port"] for p in service["spec"]["ports"]} == {port}
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    image = f"tuner-operator:{app_version}"
    assert container["image"] == image
    assert f"docker build -t {image} ." in (REPO / "docs" / "kubernetes.md").read_text()
