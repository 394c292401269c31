"""Builders of Kubernetes objects for the tests, shaped as the API server stores them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

OPT_IN = {"tuner.dev/enabled": "true"}
PLURALS = {
    "Deployment": "deployments",
    "Service": "services",
    "Pod": "pods",
    "PodMetrics": "pods",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "TuningPolicy": "tuningpolicies",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Node": "nodes",
    "EndpointSlice": "endpointslices",
}


def seed(kube: Any, *objects: dict[str, Any]) -> None:
    """Create objects through the API (a KubeApi), as kubectl would."""
    for obj in objects:
        group = obj["apiVersion"]
        prefix = "/api/v1" if group == "v1" else f"/apis/{group}"
        namespace = obj["metadata"].get("namespace")
        scope = f"/namespaces/{namespace}" if namespace else ""  # a Node is cluster-wide
        kube.create(f"{prefix}{scope}/{PLURALS[obj['kind']]}", obj)


def stamp(when: float) -> str:
    """An RFC 3339 timestamp as Kubernetes writes it."""
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def container(name: str = "app", memory: str | None = "256Mi") -> dict[str, Any]:
    """A container with a memory limit and request (or none)."""
    resources = {"limits": {"memory": memory}, "requests": {"memory": memory}} if memory else {}
    return {"name": name, "image": f"example/{name}:1", "resources": resources}


def deployment(
    name: str,
    namespace: str,
    *,
    memory: str | None = "256Mi",
    replicas: int = 2,
    labels: dict[str, str] | None = None,
    sidecar: bool = False,
) -> dict[str, Any]:
    """An apps/v1 Deployment whose pods are labelled ``app=<name>``."""
    containers = [container("app", memory)] + ([container("proxy", "64Mi")] if sidecar else [])
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or dict(OPT_IN)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": containers},
            },
        },
    }


def knative_service(
    name: str, namespace: str, *, memory: str = "512Mi", concurrency: int = 10
) -> dict[str, Any]:
    """A serving.knative.dev/v1 Service that is Ready."""
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(OPT_IN)},
        "spec": {
            "template": {
                "spec": {
                    "containerConcurrency": concurrency,
                    "timeoutSeconds": 300,
                    "containers": [container("user-container", memory)],
                }
            }
        },
        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def pod(
    name: str,
    namespace: str,
    labels: dict[str, str],
    *,
    oom_at: float | None = None,
    restarts: int = 0,
    container_name: str = "app",
    memory: str = "256Mi",
    node: str | None = None,
) -> dict[str, Any]:
    """A running pod (on ``node``) whose container (at ``memory``) was last OOM-killed at ``oom_at``."""
    status: dict[str, Any] = {
        "name": container_name,
        "ready": True,
        "restartCount": restarts,
        "state": {"running": {"startedAt": stamp(oom_at or 0)}},
    }
    if oom_at is not None:
        status["lastState"] = {
            "terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": stamp(oom_at)}
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "containers": [container(container_name, memory)],
            **({"nodeName": node} if node else {}),
        },
        "status": {"phase": "Running", "containerStatuses": [status]},
    }


def node(name: str, zone: str) -> dict[str, Any]:
    """A Node in a zone (``topology.kubernetes.io/zone``)."""
    labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


def service(name: str, namespace: str, selector: dict[str, str]) -> dict[str, Any]:
    """A v1 Service selecting pods by ``selector``."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": selector, "ports": [{"port": 80}]},
    }


def endpoint_slice(
    service_name: str, namespace: str, endpoints: list[tuple[str, str, bool]]
) -> dict[str, Any]:
    """The EndpointSlice of a Service: (pod, node, ready) per endpoint."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-abc12",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [f"10.0.0.{index + 10}"],
                "conditions": {"ready": ready},
                "nodeName": on,
                "targetRef": {"kind": "Pod", "name": name, "namespace": namespace},
            }
            for index, (name, on, ready) in enumerate(endpoints)
        ],
    }


def pod_metrics(
    name: str, namespace: str, memory: str, container_name: str = "app"
) -> dict[str, Any]:
    """A metrics.k8s.io PodMetrics sample."""
    return {
        "apiVersion": "metrics.k8s.io/v1beta1",
        "kind": "PodMetrics",
        "metadata": {"name": name, "namespace": namespace},
        "containers": [{"name": container_name, "usage": {"memory": memory, "cpu": "10m"}}],
    }


def pod_disruption_budget(name: str, namespace: str, app: str, allowed: int) -> dict[str, Any]:
    """A policy/v1 PodDisruptionBudget over pods labelled ``app=<app>``."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": app}}},
        "status": {"disruptionsAllowed": allowed},
    }
