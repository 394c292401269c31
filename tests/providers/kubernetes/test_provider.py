"""The Kubernetes provider against the emulated API server, over real HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kube_emulation import EmulatorThread, WallClock
from kube_objects import (
    deployment,
    knative_service,
    pod,
    pod_disruption_budget,
    pod_metrics,
    seed,
)

from tuner.domain.errors import ApplyFailedError, ConflictError, ProviderError
from tuner.domain.model import Change, FunctionRef, Knob, Target
from tuner.domain.ports import Provider
from tuner.providers.kubernetes import Settings, build
from tuner.providers.kubernetes.api import KubeApi
from tuner.providers.kubernetes.patching import CHANGE_ANNOTATION
from tuner.providers.kubernetes.provider import KubernetesProvider

DEPLOYMENTS = "/apis/apps/v1/namespaces/{ns}/deployments"


def make_provider(cluster: EmulatorThread, namespace: str, **options: Any) -> KubernetesProvider:
    settings = Settings(type="kubernetes", namespace=namespace, api_url=cluster.url, **options)
    provider = build(settings, clock=WallClock())
    provider.start()
    return provider


@pytest.fixture()
def provider(cluster: EmulatorThread, namespace: str) -> Any:
    p = make_provider(cluster, namespace, rollout_timeout_s=5)
    yield p
    p.close()


def target_named(provider: KubernetesProvider, name: str) -> Target:
    return next(t for t in provider.targets() if t.ref.name == name)


def memory_change(before: int, after: int) -> list[Change]:
    return [Change(Knob.MEMORY_MB, before, after)]


def test_build_returns_a_provider(provider: KubernetesProvider) -> None:
    assert isinstance(provider, Provider)


def test_targets_are_selected_workloads_with_their_configuration(
    provider: KubernetesProvider, kube: KubeApi, namespace: str
) -> None:
    knative_owned = deployment("shop-00001-deployment", namespace)
    knative_owned["metadata"]["labels"]["serving.knative.dev/revision"] = "shop-00001"
    seed(
        kube,
        deployment("checkout", namespace, memory="1Gi"),
        deployment("unlabelled", namespace, labels={"app": "x"}),
        deployment("no-limits", namespace, memory=None),
        knative_owned,
        knative_service("shop", namespace, memory="512Mi", concurrency=20),
    )
    targets = {t.ref.key: t for t in provider.targets()}
    assert sorted(targets) == [
        f"kubernetes:{namespace}/deployment.checkout",
        f"kubernetes:{namespace}/ksvc.shop",
    ]
    checkout = targets[f"kubernetes:{namespace}/deployment.checkout"].config
    assert (checkout.memory_mb, checkout.concurrency, checkout.timeout_s) == (1024, None, None)
    assert checkout.revision
    shop = targets[f"kubernetes:{namespace}/ksvc.shop"].config
    assert (shop.memory_mb, shop.concurrency, shop.timeout_s) == (512, 20, 300.0)


def test_observe_counts_oom_kills_in_the_window_restarts_and_peak_memory(
    provider: KubernetesProvider, kube: KubeApi, namespace: str
) -> None:
    now = time.time()
    labels = {"app": "api"}
    seed(
        kube,
        deployment("api", namespace),
        deployment("calm", namespace),
        pod("api-1", namespace, labels, oom_at=now - 30, restarts=3),
        pod("api-2", namespace, labels, oom_at=now - 7200, restarts=1),
        pod("calm-1", namespace, {"app": "calm"}),
        pod_metrics("api-1", namespace, "300Mi"),
        pod_metrics("api-2", namespace, "200Mi"),
    )
    targets = provider.targets()
    facts = provider.observe(targets, now - 300, now)
    api = facts[FunctionRef("kubernetes", "deployment.api", namespace)]
    assert api.ooms == 1
    assert api.invocations == 2  # without a request metric: the pods observed
    assert api.peak_memory_mb == pytest.approx(300.0)
    assert api.extra["restarts"] == 4.0
    assert api.extra["pods"] == 2.0
    calm = facts[FunctionRef("kubernetes", "deployment.calm", namespace)]
    assert (calm.ooms, calm.peak_memory_mb) == (0, None)


def test_apply_raises_memory_limit_and_request_and_records_why(
    provider: KubernetesProvider, kube: KubeApi, namespace: str
) -> None:
    seed(kube, deployment("api", namespace, memory="256Mi", sidecar=True))
    target = target_named(provider, "deployment.api")

    config = provider.apply(target, memory_change(256, 384), reason="3 OOM kills, peak 301 MB")

    assert config.memory_mb == 384
    live = kube.get(f"{DEPLOYMENTS.format(ns=namespace)}/api")
    app, proxy = live["spec"]["template"]["spec"]["containers"]
    assert app["resources"] == {"limits": {"memory": "384Mi"}, "requests": {"memory": "384Mi"}}
    assert proxy["resources"]["limits"]["memory"] == "64Mi"
    note = json.loads(live["metadata"]["annotations"][CHANGE_ANNOTATION])
    assert note["changes"] == ["memory_mb 256 -> 384"]
    assert note["reason"] == "3 OOM kills, peak 301 MB"
    events = kube.list(f"/api/v1/namespaces/{namespace}/events")
    assert [(e["reason"], e["involvedObject"]["name"]) for e in events] == [("TunerChanged", "api")]
    assert "memory_mb 256 -> 384" in events[0]["message"]


def test_apply_is_idempotent(
    provider: KubernetesProvider, kube: KubeApi, namespace: str, cluster: EmulatorThread
) -> None:
    seed(kube, deployment("api", namespace, memory="384Mi"))
    target = target_named(provider, "deployment.api")
    patches_before = count_patches(cluster, namespace)
    assert provider.apply(target, memory_change(256, 384)).memory_mb == 384
    assert count_patches(cluster, namespace) == patches_before


def count_patches(cluster: EmulatorThread, namespace: str) -> int:
    return int(
        cluster.call(
            lambda: sum(
                1 for r in cluster.emulator if r.method == "PATCH" and r.namespace == namespace
            )
        )
    )


def test_a_409_from_a_concurrent_writer_is_retried_with_the_new_version(
    provider: KubernetesProvider, kube: KubeApi, namespace: str, cluster: EmulatorThread
) -> None:
    seed(kube, deployment("api", namespace))
    target = target_named(provider, "deployment.api")

    def someone_else_writes(request: Any) -> None:
        cluster.emulator.bump(
            "apps/v1/deployments",
            namespace,
            "api",
            {"metadata": {"annotations": {"team": "payments"}}},
        )

    cluster.call(lambda: cluster.emulator.interferences.append(someone_else_writes))
    config = provider.apply(target, memory_change(256, 512))

    assert config.memory_mb == 512
    assert count_patches(cluster, namespace) == 2
    live = kube.get(f"{DEPLOYMENTS.format(ns=namespace)}/api")
    assert live["metadata"]["annotations"]["team"] == "payments"


def test_a_stale_plan_is_a_conflict_for_the_caller_to_re_plan(
    provider: KubernetesProvider, kube: KubeApi, namespace: str, cluster: EmulatorThread
) -> None:
    seed(kube, deployment("api", namespace, memory="256Mi"))
    target = target_named(provider, "deployment.api")
    kube.patch(
        f"{DEPLOYMENTS.format(ns=namespace)}/api",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "app", "resources": {"limits": {"memory": "300Mi"}}}
                        ]
                    }
                }
            }
        },
    )

    with pytest.raises(ConflictError, match="memory_mb is 300, planned from 256"):
        provider.apply(target, memory_change(256, 384))


def test_persistent_conflicts_give_up_after_the_bounded_retries(
    cluster: EmulatorThread, kube: KubeApi, namespace: str
) -> None:
    provider = make_provider(cluster, namespace, conflict_retries=2)
    seed(kube, deployment("api", namespace))
    target = target_named(provider, "deployment.api")

    def someone_else_writes(request: Any) -> None:
        cluster.emulator.bump("apps/v1/deployments", namespace, "api", {})

    cluster.call(lambda: cluster.emulator.interferences.extend([someone_else_writes] * 3))
    with pytest.raises(ConflictError, match="after 3 attempts"):
        provider.apply(target, memory_change(256, 512))
    provider.close()


def test_a_single_replica_deployment_is_not_restarted_unless_allowed(
    cluster: EmulatorThread, kube: KubeApi, namespace: str
) -> None:
    seed(kube, deployment("solo", namespace, replicas=1))
    careful = make_provider(cluster, namespace)
    with pytest.raises(ProviderError, match="single replica"):
        careful.apply(target_named(careful, "deployment.solo"), memory_change(256, 384))
    careful.close()

    allowed = make_provider(cluster, namespace, allow_single_replica_restart=True)
    assert (
        allowed.apply(target_named(allowed, "deployment.solo"), memory_change(256, 384)).memory_mb
        == 384
    )
    allowed.close()


def test_a_pod_disruption_budget_without_room_holds_the_change_back(
    provider: KubernetesProvider, kube: KubeApi, namespace: str
) -> None:
    seed(
        kube,
        deployment("api", namespace),
        pod_disruption_budget("api-pdb", namespace, "api", allowed=0),
        pod_disruption_budget("other-pdb", namespace, "other", allowed=0),
    )
    with pytest.raises(ProviderError, match="PodDisruptionBudget api-pdb allows no disruption"):
        provider.apply(target_named(provider, "deployment.api"), memory_change(256, 384))


def test_an_unfinished_rollout_fails_the_apply(
    cluster: EmulatorThread, kube: KubeApi, namespace: str
) -> None:
    seed(kube, deployment("api", namespace))
    provider = make_provider(cluster, namespace, rollout_timeout_s=0.5)
    cluster.call(lambda: setattr(cluster.emulator, "auto_rollout", False))
    try:
        with pytest.raises(ApplyFailedError, match="rollout unfinished"):
            provider.apply(target_named(provider, "deployment.api"), memory_change(256, 384))
    finally:
        cluster.call(lambda: setattr(cluster.emulator, "auto_rollout", True))
        provider.close()


def test_knative_concurrency_and_memory_change_together(
    provider: KubernetesProvider, kube: KubeApi, namespace: str
) -> None:
    seed(kube, knative_service("shop", namespace, memory="512Mi", concurrency=10))
    target = target_named(provider, "ksvc.shop")
    changes = [Change(Knob.CONCURRENCY, 10, 4), Change(Knob.MEMORY_MB, 512, 768)]
    config = provider.apply(target, changes)
    assert (config.concurrency, config.memory_mb) == (4, 768)
    assert provider.read(target.ref).concurrency == 4


def test_a_knob_a_deployment_lacks_is_refused(
    provider: KubernetesProvider, kube: KubeApi, namespace: str
) -> None:
    seed(kube, deployment("api", namespace))
    target = target_named(provider, "deployment.api")
    with pytest.raises(ProviderError, match="no knob batch_size"):
        provider.apply(target, [Change(Knob.BATCH_SIZE, None, 10)])


def test_an_absent_knative_api_is_skipped(
    cluster: EmulatorThread, kube: KubeApi, namespace: str
) -> None:
    seed(kube, deployment("api", namespace))
    provider = make_provider(cluster, namespace, kinds=("deployment", "ksvc"))
    info = cluster.call(lambda: cluster.emulator.resources.pop("serving.knative.dev/v1/services"))
    try:
        assert [t.ref.name for t in provider.targets()] == ["deployment.api"]
    finally:
        cluster.call(
            lambda: cluster.emulator.resources.__setitem__("serving.knative.dev/v1/services", info)
        )
        provider.close()
