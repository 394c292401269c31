"""Two operator replicas: only the Lease holder acts; the standby takes over."""

from __future__ import annotations

import time
from pathlib import Path

from kube_emulation import EmulatorThread
from kube_objects import deployment, pod, seed
from operator_threads import OperatorThread, eventually

from tuner.providers.kubernetes.api import KubeApi

NAMESPACE = "team"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/tuner-system/leases/tuner-operator"
POLICY = f"/apis/tuner.dev/v1alpha1/namespaces/{NAMESPACE}/tuningpolicies/fleet"


def holder(kube: KubeApi) -> str | None:
    spec: dict[str, str | None] = kube.get(LEASE).get("spec") or {}
    return spec.get("holderIdentity")


def test_only_the_lease_holder_acts_and_the_standby_takes_over(
    cluster: EmulatorThread, tmp_path: Path
) -> None:
    kube = KubeApi(cluster.url)
    seed(kube, deployment("api", NAMESPACE), pod("api-1", NAMESPACE, {"app": "api"}))
    first = OperatorThread(cluster, "first", tmp_path / "first").start()
    eventually(lambda: first.state.elector.is_leader)
    second = OperatorThread(cluster, "second", tmp_path / "second").start()
    try:
        seed(
            kube,
            {
                "apiVersion": "tuner.dev/v1alpha1",
                "kind": "TuningPolicy",
                "metadata": {"name": "fleet", "namespace": NAMESPACE},
                "spec": {"mode": "observe"},
            },
        )
        eventually(lambda: (kube.get(POLICY).get("status") or {}).get("lastCycle"))
        kube.patch(
            f"/api/v1/namespaces/{NAMESPACE}/pods/api-1",
            pod("api-1", NAMESPACE, {"app": "api"}, oom_at=time.time(), restarts=1),
        )
        eventually(lambda: first.state.cycles >= 2)  # the OOM woke the leader's policy

        assert holder(kube) == "first"
        assert not second.state.elector.is_leader
        assert second.state.cycles == 0, "the standby must never act"
        assert ("team", "fleet") in second.state.runners, "the standby keeps the policy wired"

        first.stop()
        eventually(lambda: second.state.elector.is_leader, timeout=5)
        assert holder(kube) == "second"
        kube.patch(
            f"/api/v1/namespaces/{NAMESPACE}/pods/api-1",
            pod("api-1", NAMESPACE, {"app": "api"}, oom_at=time.time(), restarts=2),
        )
        eventually(lambda: second.state.cycles >= 1)
        status = eventually(
            lambda: (s := kube.get(POLICY).get("status") or {}).get("leader") == "second" and s
        )
        assert status["mode"] == "observe"
    finally:
        second.stop()
        first.stop()
        kube.close()
