"""Evidence at the configuration in force: pods of an older template no longer count.

The race: a container is OOM-killed at 256Mi; while tuner applies 256 -> 512, a person
raises the Deployment to 2048Mi.  tuner's change is superseded (the person's stands),
and the old pod's OOM kill, still in the next window, must not raise 2048 to 4096.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from kube_emulation import EmulatorThread, WallClock
from kube_objects import deployment, pod, seed

from tuner.daemon.config import parse_config
from tuner.daemon.wiring import build
from tuner.domain.lifecycle import State
from tuner.domain.model import FunctionRef
from tuner.providers.kubernetes import Settings
from tuner.providers.kubernetes import build as build_provider
from tuner.providers.kubernetes.api import KubeApi

DEPLOYMENTS = "/apis/apps/v1/namespaces/{ns}/deployments"


def memory_of(kube: KubeApi, namespace: str, name: str) -> str:
    live = kube.get(f"{DEPLOYMENTS.format(ns=namespace)}/{name}")
    return str(live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])


def sized(container: dict[str, Any], memory: str) -> dict[str, Any]:
    return {
        **container,
        "resources": {"limits": {"memory": memory}, "requests": {"memory": memory}},
    }


def test_pods_of_an_older_size_are_left_out_of_the_window(
    cluster: EmulatorThread, kube: KubeApi, namespace: str
) -> None:
    now = time.time()
    labels = {"app": "api"}
    old = pod("api-old", namespace, labels, oom_at=now - 30, restarts=1)  # at 256Mi
    current = pod("api-new", namespace, labels)
    current["spec"]["containers"] = [sized(current["spec"]["containers"][0], "2Gi")]
    unsized = pod("api-unsized", namespace, labels, oom_at=now - 20, restarts=1)
    unsized["spec"]["containers"][0].pop("resources")
    seed(kube, deployment("api", namespace, memory="2Gi"), old, current, unsized)
    provider = build_provider(
        Settings(type="kubernetes", namespace=namespace, api_url=cluster.url), clock=WallClock()
    )
    try:
        targets = provider.targets()
        window = provider.observe(targets, now - 300, now + 1)
    finally:
        provider.close()
    facts = window[FunctionRef("kubernetes", "deployment.api", namespace)]
    # The pod at 256Mi tells nothing about 2Gi; the one whose spec says no size still counts.
    # Pods and restarts stay counters of the whole workload.
    assert (facts.ooms, facts.extra["pods"], facts.extra["restarts"]) == (1, 3.0, 2.0)


def test_a_persons_raise_during_tuners_change_is_not_raised_again_from_old_evidence(
    cluster: EmulatorThread, kube: KubeApi, namespace: str, tmp_path: Path
) -> None:
    now = time.time()
    labels = {"app": "api"}
    seed(
        kube,
        deployment("api", namespace, memory="256Mi"),
        pod("api-1", namespace, labels, oom_at=now - 30, restarts=1),
        pod("api-2", namespace, labels),
    )
    dep = kube.get(f"{DEPLOYMENTS.format(ns=namespace)}/api")
    container = dep["spec"]["template"]["spec"]["containers"][0]

    def a_person_raises_memory(request: Any) -> None:
        spec = {"template": {"spec": {"containers": [sized(container, "2048Mi")]}}}
        cluster.emulator.bump("apps/v1/deployments", namespace, "api", {"spec": spec})

    cluster.call(lambda: cluster.emulator.interferences.append(a_person_raises_memory))
    config = {
        "mode": "apply",
        "interval": "10m",
        "store": str(tmp_path / "tuner.db"),
        "providers": [
            {
                "type": "kubernetes",
                "namespace": namespace,
                "api_url": cluster.url,
                "rollout_timeout_s": 5,
                "allow_single_replica_restart": True,
            }
        ],
    }
    text = yaml.safe_dump(config)
    (tmp_path / "tuner.yaml").write_text(text)
    tuner = build(parse_config(text, str(tmp_path / "tuner.yaml")))
    tuner.start()
    try:
        first = tuner.daemon.run_cycle()
        assert memory_of(kube, namespace, "api") == "2048Mi"  # the person's raise stands
        second = tuner.daemon.run_cycle()
        decisions = tuner.store.decisions(limit=100)
    finally:
        tuner.close()

    assert first.errors == [] and second.errors == []
    assert memory_of(kube, namespace, "api") == "2048Mi"
    raised = [d for d in decisions if d.change is not None and d.state is State.APPLIED]
    assert raised == []
    superseded = [d for d in decisions if d.state is State.SUPERSEDED]
    assert [d.change.before for d in superseded if d.change] == [256]
