"""Knative is optional: without it, or without access to it, Deployments are still tuned."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kube_emulation import EmulatorThread, WallClock
from kube_objects import container, deployment, knative_service, pod, seed
from structlog.testing import capture_logs

from tuner.domain.errors import ProviderError
from tuner.domain.model import Change, Knob
from tuner.providers.kubernetes import Settings, build
from tuner.providers.kubernetes.api import KubeApi
from tuner.providers.kubernetes.provider import KubernetesProvider

NAMESPACE = "shop"
KNATIVE = "serving.knative.dev/v1/services"


@pytest.fixture()
def bare_cluster() -> Iterator[EmulatorThread]:
    """A cluster of its own, so a test may take Knative away or forbid it."""
    emulated = EmulatorThread().start()
    yield emulated
    emulated.stop()


def provider_for(cluster: EmulatorThread, **options: Any) -> KubernetesProvider:
    settings = Settings(namespace=NAMESPACE, api_url=cluster.url, rollout_timeout_s=5, **options)
    provider = build(settings, clock=WallClock())
    provider.start()
    return provider


def unavailable_warnings(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "workload_kind_unavailable"]


def without_knative(cluster: EmulatorThread) -> None:
    cluster.call(lambda: cluster.emulator.resources.pop(KNATIVE))


def forbid_knative(cluster: EmulatorThread) -> None:
    cluster.call(lambda: cluster.emulator.forbidden.add(KNATIVE))


@pytest.mark.parametrize(
    ("take_away", "reason"), [(without_knative, "not installed"), (forbid_knative, "not granted")]
)
def test_deployments_are_tuned_and_one_warning_says_why_knative_is_not(
    bare_cluster: EmulatorThread, take_away: Any, reason: str
) -> None:
    kube = KubeApi(bare_cluster.url)
    seed(
        kube,
        deployment("checkout", NAMESPACE, memory="256Mi"),
        pod("checkout-1", NAMESPACE, {"app": "checkout"}),
    )
    take_away(bare_cluster)
    provider = provider_for(bare_cluster)
    try:
        with capture_logs() as logs:
            first = provider.targets()
            second = provider.targets()
            facts = provider.observe(first, 0.0, 1.0)
        assert [t.ref.name for t in first] == ["deployment.checkout"]
        assert [t.ref.name for t in second] == ["deployment.checkout"]
        assert set(facts) == {first[0].ref}
        [warning] = unavailable_warnings(logs)
        assert warning["log_level"] == "warning"
        assert warning["kind"] == "Service" and warning["reason"] == reason
        applied = provider.apply(first[0], [Change(Knob.MEMORY_MB, 256, 384)])
        assert applied.memory_mb == 384
    finally:
        provider.close()
        kube.close()


def test_a_forbidden_deployment_list_is_an_error_not_an_empty_fleet(
    bare_cluster: EmulatorThread,
) -> None:
    bare_cluster.call(lambda: bare_cluster.emulator.forbidden.add("apps/v1/deployments"))
    provider = provider_for(bare_cluster)
    try:
        with pytest.raises(ProviderError, match="403"):
            provider.targets()
    finally:
        provider.close()


def test_the_kinds_setting_leaves_knative_alone(bare_cluster: EmulatorThread) -> None:
    kube = KubeApi(bare_cluster.url)
    seed(kube, deployment("checkout", NAMESPACE), knative_service("resize", NAMESPACE))
    forbid_knative(bare_cluster)
    seeded = len(bare_cluster.requests())
    provider = provider_for(bare_cluster, kinds=["deployment"])
    try:
        with capture_logs() as logs:
            assert [t.ref.name for t in provider.targets()] == ["deployment.checkout"]
        assert unavailable_warnings(logs) == [], "a kind not asked for is never called"
        calls = [r.resource for r in bare_cluster.requests()[seeded:]]
        assert KNATIVE not in calls
    finally:
        provider.close()
        kube.close()


def test_knative_coming_back_is_tuned_again(bare_cluster: EmulatorThread) -> None:
    kube = KubeApi(bare_cluster.url)
    seed(kube, knative_service("resize", NAMESPACE))
    forbid_knative(bare_cluster)
    provider = provider_for(bare_cluster)
    try:
        assert provider.targets() == []
        bare_cluster.call(lambda: bare_cluster.emulator.forbidden.clear())
        assert [t.ref.name for t in provider.targets()] == ["ksvc.resize"]
    finally:
        provider.close()
        kube.close()


def test_an_unnamed_knative_container_is_the_user_container(bare_cluster: EmulatorThread) -> None:
    """A Service stored before Knative's defaulting webhook ran has an unnamed container."""
    kube = KubeApi(bare_cluster.url)
    service = knative_service("resize", NAMESPACE, memory="1Gi")
    unnamed = container("ignored", "1Gi")
    del unnamed["name"]
    service["spec"]["template"]["spec"]["containers"] = [unnamed]
    seed(kube, service)
    provider = provider_for(bare_cluster)
    try:
        with capture_logs() as logs:
            [target] = provider.targets()
        assert not [e for e in logs if e["event"] == "workload_without_memory_setting"]
        assert target.config.memory_mb == 1024
        provider.apply(target, [Change(Knob.MEMORY_MB, 1024, 1536)])
        stored = kube.get(f"/apis/serving.knative.dev/v1/namespaces/{NAMESPACE}/services/resize")
        [patched] = stored["spec"]["template"]["spec"]["containers"]
        assert patched["resources"]["limits"]["memory"] == "1536Mi"
        assert provider.read(target.ref).memory_mb == 1536
    finally:
        provider.close()
        kube.close()
