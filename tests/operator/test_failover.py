"""Failover: the leader is killed (SIGKILL) while its change is being verified.

Two operator processes run against the emulated API server, as two replicas of the
chart would.  The leader gives more memory to a Deployment whose containers restart for another
reason; it is killed before it can judge the change.  The standby must take the Lease,
must not change the workload again within the rule's cooldown, must judge the change
from the state the cluster holds, and must roll it back: it cost more and did not help.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kube_emulation import EmulatorThread
from kube_objects import deployment, pod, seed
from operator_threads import DEFAULT_RULES, REPO, RESTART_RULES, eventually

from tuner.domain.lifecycle import State
from tuner.providers.kubernetes.api import KubeApi
from tuner.store.audit import SqliteStore

pytestmark = pytest.mark.slow

NAMESPACE = "shop"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/tuner-system/leases/tuner-operator"
POLICY = f"/apis/tuner.dev/v1alpha1/namespaces/{NAMESPACE}/tuningpolicies/fleet"
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/api"
PODS = 5


class OperatorProcess:
    """One replica: ``python -m operators.tuner_operator`` with the chart's environment."""

    def __init__(self, cluster: EmulatorThread, identity: str, folder: Path) -> None:
        self.identity = identity
        self.state_dir = folder / identity
        self.log = folder / f"{identity}.log"
        env = dict(
            os.environ,
            TUNER_API_URL=cluster.url,
            TUNER_STATE_DIR=str(self.state_dir),
            TUNER_DEFAULT_RULES=str(DEFAULT_RULES),
            TUNER_INTERVAL_S="3600",
            TUNER_KINDS="deployment",
            TUNER_LEASE_DURATION_S="2",
            TUNER_LEASE_RENEW_S="0.3",
            POD_NAME=identity,
            POD_NAMESPACE="tuner-system",
            TUNER_HTTP_ADDRESS="127.0.0.1:0",
        )
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "operators.tuner_operator"],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no Lease release, nothing flushed."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait (a second stop is harmless)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def store(self) -> SqliteStore:
        """The replica's audit store of the policy (read after it stopped)."""
        return SqliteStore(self.state_dir / NAMESPACE / "fleet" / "tuner.db")


def holder(kube: KubeApi) -> str | None:
    try:
        spec: dict[str, Any] = kube.get(LEASE).get("spec") or {}
    except Exception:  # noqa: BLE001 - not created yet
        return None
    return spec.get("holderIdentity")


def memory(kube: KubeApi) -> str:
    live = kube.get(DEPLOYMENT)
    return str(live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])


def changes(kube: KubeApi) -> dict[str, Any]:
    found: dict[str, Any] = (kube.get(POLICY).get("status") or {}).get("changes") or {}
    return found


def test_the_standby_judges_and_rolls_back_the_change_of_a_killed_leader(
    cluster: EmulatorThread, tmp_path: Path
) -> None:
    kube = KubeApi(cluster.url)
    seed(
        kube,
        deployment("api", NAMESPACE, memory="256Mi"),
        *[pod(f"api-{i}", NAMESPACE, {"app": "api"}, restarts=1) for i in range(PODS)],
    )
    replicas = {name: OperatorProcess(cluster, name, tmp_path) for name in ("first", "second")}
    try:
        first_holder = eventually(lambda: holder(kube), timeout=30)
        leader = replicas[first_holder]
        [standby] = [r for name, r in replicas.items() if name != first_holder]
        seed(
            kube,
            {
                "apiVersion": "tuner.dev/v1alpha1",
                "kind": "TuningPolicy",
                "metadata": {"name": "fleet", "namespace": NAMESPACE},
                "spec": {
                    "mode": "apply",
                    "interval": "2s",
                    "kinds": ["deployment"],
                    "rules": {"inline": RESTART_RULES},
                },
            },
        )
        eventually(lambda: "policy_wired" in standby.log.read_text(), timeout=20)
        pending = eventually(
            lambda: [(k, e) for k, e in changes(kube).items() if e.get("state") == "applied"],
            timeout=30,
            step=0.02,
        )
        leader.kill()
        killed_at = time.time()
        [(change_id, entry)] = pending
        assert (entry["before"], entry["after"], entry["intent"]["state"]) == (256, 512, "done")
        assert memory(kube) == "512Mi"

        eventually(lambda: holder(kube) == standby.identity, timeout=10)
        took_over_s = time.time() - killed_at
        eventually(lambda: memory(kube) == "256Mi", timeout=30, step=0.1)
        time.sleep(2.5)  # a cycle more: the rule still holds, the cooldown must hold it back
        assert memory(kube) == "256Mi"
        workload_patches = [
            r
            for r in cluster.requests()
            if r.method == "PATCH" and r.resource == "apps/v1/deployments"
        ]
        assert len(workload_patches) == 2, "one change by the leader, one rollback by the standby"
        print(f"the standby took the Lease {took_over_s:.1f} s after SIGKILL (lease 2 s)")
        assert took_over_s < 6
        judged = changes(kube)[change_id]
        assert judged["state"] == "rolled-back"
        assert any(e["undoes"] == change_id for e in changes(kube).values())
    finally:
        for replica in replicas.values():
            replica.stop()
        kube.close()

    audit = standby.store()
    try:
        applied = audit.applied_since(0.0)
        [change] = [d for d in applied if d.action == "more-memory"]
        [rollback] = [d for d in applied if d.action == "rollback"]
        assert change.state is State.ROLLED_BACK
        assert rollback.undoes == change.id and rollback.state is State.APPLIED
        assert change.change is not None and change.change.describe() == "memory_mb 256 -> 512"
        assert "did not help" in change.why
        skipped = [d for d in audit.decisions() if d.state is State.SKIPPED]
        assert skipped and all("cooldown" in d.why for d in skipped)
    finally:
        audit.close()
