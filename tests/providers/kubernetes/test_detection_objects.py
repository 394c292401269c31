"""Real pod statuses and Events from the public corpus, served by the emulated API server.

Each object is the one quoted at its source (``tests/corpus/kubernetes.yaml``); only
what places it in this test's cluster changes: its namespace, the labels that make it
the workload's pod, and its times, moved into the observed window.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from kube_emulation import EmulatorThread, WallClock
from kube_objects import deployment, seed, stamp

from tests.corpus import kubernetes_items
from tuner.daemon.config import bundled_rules
from tuner.domain.model import FunctionRef, Target, WindowFacts
from tuner.engine import Streaks, build_facts, evaluate, load_rules
from tuner.providers.kubernetes import Settings, build
from tuner.providers.kubernetes.api import KubeApi
from tuner.providers.kubernetes.provider import KubernetesProvider
from tuner.providers.kubernetes.signals import container_statuses


def quoted(source: str, index: int = 0) -> dict[str, Any]:
    """A copy of the corpus object (pod or Event) quoted at ``source``."""
    item = [i for i in kubernetes_items() if i.source == source][index]
    return copy.deepcopy(item.pod if item.pod is not None else item.event or {})


def _retime(obj: Any, when: str) -> None:
    """Move every timestamp of an object to ``when`` (the zero time stays: it means none)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in {"startedAt", "finishedAt", "lastTransitionTime", "lastTimestamp"} and (
                isinstance(value, str) and not value.startswith("0001")
            ):
                obj[key] = when
            else:
                _retime(value, when)
    elif isinstance(obj, list):
        for value in obj:
            _retime(value, when)


def as_pod(status_of: dict[str, Any], name: str, namespace: str, app: str, when: float) -> Any:
    """A pod of workload ``app`` carrying the quoted status, its times moved to ``when``."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
        "status": copy.deepcopy(status_of["status"]),
    }
    _retime(pod["status"], stamp(when))
    return pod


def as_event(event: dict[str, Any], namespace: str, when: float, **involved: str) -> Any:
    """The quoted Event in the namespace, at ``when``, about the given object."""
    event = copy.deepcopy(event)
    event["apiVersion"], event["kind"] = "v1", "Event"
    event["metadata"] = {"name": f"ev-{time.monotonic_ns()}", "namespace": namespace}
    event["involvedObject"] = {**event.get("involvedObject", {}), **involved}
    event["lastTimestamp"] = event["firstTimestamp"] = stamp(when)
    return event


def seed_event(kube: KubeApi, event: dict[str, Any]) -> None:
    kube.create(f"/api/v1/namespaces/{event['metadata']['namespace']}/events", event)


def observe(cluster: EmulatorThread, namespace: str, name: str) -> tuple[Target, WindowFacts]:
    settings = Settings(type="kubernetes", namespace=namespace, api_url=cluster.url)
    provider = build(settings, clock=WallClock())
    assert isinstance(provider, KubernetesProvider)
    try:
        [target] = [t for t in provider.targets() if t.ref.name == f"deployment.{name}"]
        now = time.time()
        facts = provider.observe([target], now - 300, now + 1)
        return target, facts[FunctionRef("kubernetes", f"deployment.{name}", namespace)]
    finally:
        provider.close()


def rules_fired(target: Target, window: WindowFacts) -> list[str]:
    found, _ = evaluate(
        load_rules([bundled_rules()]), target, build_facts(target, window, {}), Streaks(), 0.0
    )
    return [f.rule for f in found]


@pytest.mark.parametrize(
    "source",
    [
        "https://github.com/kubernetes/kubernetes/issues/104454",  # init container, exit code 0
        "https://github.com/kubernetes/kubernetes/pull/117712",
        "https://github.com/istio/istio/issues/24196",  # the istio-proxy sidecar
    ],
)
def test_an_init_container_or_sidecar_killed_for_memory_is_reported_not_sized(
    cluster: EmulatorThread, kube: KubeApi, namespace: str, source: str
) -> None:
    seed(kube, deployment("api", namespace))
    seed(kube, as_pod(quoted(source), "api-1", namespace, "api", time.time() - 30))
    target, window = observe(cluster, namespace, "api")
    assert (window.ooms, window.extra["other_container_ooms"]) == (0, 1.0)
    fired = rules_fired(target, window)
    assert "container-oom-elsewhere" in fired and "oom" not in fired


def test_a_native_sidecar_is_told_from_an_init_container() -> None:
    pod = as_pod(quoted("https://github.com/kubernetes/kubernetes/pull/117712"), "p", "n", "a", 0)
    pod["spec"]["initContainers"] = [{"name": "stress-init", "restartPolicy": "Always"}]
    assert [kind for kind, _ in container_statuses(pod)] == ["sidecar"]
    pod["spec"]["initContainers"][0].pop("restartPolicy")
    assert [kind for kind, _ in container_statuses(pod)] == ["init"]


def test_the_tuned_container_killed_for_memory_is_an_oom(
    cluster: EmulatorThread, kube: KubeApi, namespace: str
) -> None:
    pod = quoted("https://github.com/AliyunContainerService/kube-eventer/issues/285", 1)
    pod["status"]["containerStatuses"][0]["name"] = "app"
    seed(kube, deployment("api", namespace), as_pod(pod, "api-1", namespace, "api", time.time()))
    backoff = quoted("https://github.com/AliyunContainerService/kube-eventer/issues/285")
    seed_event(kube, as_event(backoff, namespace, time.time(), kind="Pod", name="api-1"))
    target, window = observe(cluster, namespace, "api")
    assert (window.ooms, window.extra["backoffs"]) == (1, 1.0)
    assert "oom" in rules_fired(target, window)


def test_an_eviction_over_the_request_raises_memory_and_one_within_it_is_reported(
    cluster: EmulatorThread, kube: KubeApi, namespace: str
) -> None:
    now = time.time()
    # The kubelet's Event (FederatedAI/KubeFATE#64): container "egg" used more than its
    # request of 0 when the node ran short of memory.
    evicted = quoted("https://github.com/FederatedAI/KubeFATE/issues/64")
    egg = deployment("egg", namespace)
    egg["spec"]["template"]["spec"]["containers"][0]["name"] = "egg"
    pod = {"status": {"phase": "Failed", "reason": "Evicted", "message": evicted["message"]}}
    seed(kube, egg, deployment("store", namespace), as_pod(pod, "egg-1", namespace, "egg", now))
    seed_event(kube, as_event(evicted, namespace, now - 20, kind="Pod", name="egg-1"))
    # A pod evicted when its node ran out of ephemeral storage (kubernetes#122932).
    storage = quoted("https://github.com/kubernetes/kubernetes/issues/122932")
    storage["status"]["conditions"] = [{"type": "DisruptionTarget", "lastTransitionTime": "t"}]
    seed(kube, as_pod(storage, "store-1", namespace, "store", now - 40))

    target, window = observe(cluster, namespace, "egg")
    assert (window.extra["evictions"], window.extra["evictions_over_request"]) == (1.0, 1.0)
    fired = rules_fired(target, window)
    assert "eviction-over-request" in fired and "eviction" not in fired
    rule = load_rules([bundled_rules()]).by_name("eviction-over-request")
    assert rule is not None
    built = build_facts(target, window, {})
    plan = rule.rule.actions[0].plan(target.config, target.limits, built)
    assert plan.change is not None and (plan.change.before, plan.change.after) == (256, 384)

    target, window = observe(cluster, namespace, "store")
    assert (window.extra["evictions"], window.extra["evictions_over_request"]) == (1.0, 0.0)
    assert build_facts(target, window, {})["eviction_reason"] == "ephemeral-storage"
    fired = rules_fired(target, window)
    assert "eviction" in fired and "eviction-over-request" not in fired


def test_a_node_oom_event_counts_only_for_the_pod_it_names(
    cluster: EmulatorThread, kube: KubeApi, namespace: str
) -> None:
    now = time.time()
    seed(kube, deployment("api", namespace), deployment("demo", namespace))
    seed(kube, as_pod({"status": {"phase": "Running"}}, "api-1", namespace, "api", now))
    seed(kube, as_pod({"status": {"phase": "Running"}}, "memory-demo-2", namespace, "demo", now))
    node = quoted("https://github.com/kubernetes/node-problem-detector/issues/766")
    seed_event(kube, as_event(node, namespace, now - 10))  # about the node: names no pod
    cgroup = quoted("https://github.com/kubernetes/kubernetes/pull/100487")
    seed_event(kube, as_event(cgroup, namespace, now - 10))  # about pod memory-demo-2
    _, api = observe(cluster, namespace, "api")
    _, demo = observe(cluster, namespace, "demo")
    assert (api.ooms, demo.ooms) == (0, 1)


@pytest.mark.parametrize(
    "source",
    [
        "https://github.com/apecloud/kubeblocks/issues/8027",
        "https://github.com/kubernetes/kubernetes/issues/122160",
    ],
)
def test_a_restart_whose_termination_was_lost_is_counted_apart_never_as_an_oom(
    cluster: EmulatorThread, kube: KubeApi, namespace: str, source: str
) -> None:
    pod = quoted(source)
    pod["status"]["containerStatuses"][0]["name"] = "app"
    seed(kube, deployment("api", namespace), as_pod(pod, "api-1", namespace, "api", time.time()))
    _, window = observe(cluster, namespace, "api")
    assert (window.ooms, window.extra["restarts_without_state"]) == (0, 1.0)
