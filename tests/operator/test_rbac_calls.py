"""The chart's roles grant exactly the API calls the operator makes, no more, no fewer.

The operator runs a whole cycle against the emulated API server (rules from a
ConfigMap, a channel's Secret, a Deployment and a Knative Service changed, Events, the
Lease, the status); every request the server received is turned into the RBAC triple
(API group, resource, verb) it needs and compared with the rendered ClusterRole and Role.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import kmock
from kube_emulation import EmulatorThread
from kube_objects import (
    deployment,
    knative_service,
    pod,
    pod_disruption_budget,
    pod_metrics,
    seed,
)
from operator_threads import OOM_RULES, OperatorThread, eventually
from test_helm_chart import granted_rules, render

from tuner.providers.kubernetes.api import KubeApi

NAMESPACE = "shop"
POLICY = f"/apis/tuner.dev/v1alpha1/namespaces/{NAMESPACE}/tuningpolicies/fleet"
VERBS = {
    kmock.action.LIST: "list",
    kmock.action.WATCH: "watch",
    kmock.action.FETCH: "get",
    kmock.action.CREATE: "create",
    kmock.action.DELETE: "delete",
}


def needed(request: kmock.Request) -> tuple[str, str, str] | None:
    """The (group, resource, verb) an RBAC rule must grant for this request."""
    resource = request.resource
    if resource is None or not resource.plural:
        return None  # discovery (/api, /apis/<group>/<version>): open to every user
    if request.action is kmock.action.UPDATE:
        verb = "patch" if str(request.method).upper().endswith("PATCH") else "update"
    else:
        verb = VERBS[request.action]
    plural = resource.plural or ""
    if request.subresource:
        plural += f"/{request.subresource}"
    return (resource.group or "", plural, verb)


def memory_of(kube: KubeApi, path: str) -> str:
    live = kube.get(path)
    return str(live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])


def test_the_calls_of_a_whole_cycle_are_exactly_the_granted_rules(
    cluster: EmulatorThread, tmp_path: Path
) -> None:
    kube = KubeApi(cluster.url)
    now = time.time()
    ksvc_pod = pod(
        "resize-1",
        NAMESPACE,
        {"serving.knative.dev/service": "resize"},
        oom_at=now,
        restarts=1,
        container_name="user-container",
        memory="512Mi",  # the Service's size: a pod of its revision
    )
    seed(
        kube,
        deployment("api", NAMESPACE, memory="256Mi"),
        pod("api-1", NAMESPACE, {"app": "api"}, oom_at=now, restarts=1),
        pod_metrics("api-1", NAMESPACE, "250Mi"),
        pod_disruption_budget("api", NAMESPACE, "api", allowed=1),
        knative_service("resize", NAMESPACE, memory="512Mi"),
        ksvc_pod,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "rules", "namespace": NAMESPACE},
            "data": {"rules.yaml": OOM_RULES},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "hook", "namespace": NAMESPACE},
            "data": {"url": base64.b64encode(b"http://127.0.0.1:9/hook").decode()},
        },
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
                    "mode": "apply",
                    "rules": {"configMapRef": {"name": "rules", "key": "rules.yaml"}},
                    "channels": [
                        {
                            "name": "hook",
                            "type": "webhook",
                            "secretRef": {"name": "hook", "key": "url"},
                        }
                    ],
                },
            },
        )
        deployments = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/api"
        services = f"/apis/serving.knative.dev/v1/namespaces/{NAMESPACE}/services/resize"
        eventually(lambda: memory_of(kube, deployments) != "256Mi", timeout=15)
        eventually(lambda: memory_of(kube, services) != "512Mi", timeout=15)
        eventually(lambda: (kube.get(POLICY).get("status") or {}).get("applied") == 2)
    finally:
        replica.stop()
        kube.close()

    made = {n for r in cluster.requests()[seeded:] if (n := needed(r)) is not None}
    made -= {("tuner.dev", "tuningpolicies", "create")}  # the test's own policy
    granted = granted_rules(render())
    assert made - granted == set(), "calls the chart does not grant"
    assert granted - made == set(), "rules the chart grants that no call needs"
