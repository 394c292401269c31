"""Pure parts of the Kubernetes provider: quantities, selectors, OOM signals, disruption."""

from __future__ import annotations

from typing import Any

import pytest
from kube_objects import deployment, knative_service, pod, pod_disruption_budget

from tuner.domain.errors import ApplyFailedError, ProviderError
from tuner.domain.model import FunctionRef
from tuner.providers.kubernetes import LabelSelector
from tuner.providers.kubernetes.disruption import check_disruption
from tuner.providers.kubernetes.quantities import format_mb, parse_bytes, parse_mb
from tuner.providers.kubernetes.rollouts import rolled_out
from tuner.providers.kubernetes.signals import count_ooms, has_recent_oom, restart_count
from tuner.providers.kubernetes.workloads import (
    DEPLOYMENT,
    KNATIVE_SERVICE,
    container_names,
    parse_ref,
)


@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("256Mi", 256),
        ("1Gi", 1024),
        ("1.5Gi", 1536),
        ("268435456", 256),
        ("512M", 489),
        ("1G", 954),
        ("131072Ki", 128),
        ("129e6", 124),
        (134217728, 128),
        ("100m", 1),
    ],
)
def test_memory_quantities_in_mb(text: str | int, mb: int) -> None:
    assert parse_mb(text) == mb


@pytest.mark.parametrize("text", ["", "12Qi", "Mi", "1.2.3Gi", "-5Mi"])
def test_malformed_quantities_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_bytes(text)


def test_mb_are_written_as_mebibytes() -> None:
    assert format_mb(384) == "384Mi"
    assert format_mb(383.2) == "384Mi"


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        (
            {"matchExpressions": [{"key": "t", "operator": "In", "values": ["x", "y"]}]},
            {"t": "y"},
            True,
        ),
        ({"matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["x"]}]}, {}, True),
        ({"matchExpressions": [{"key": "t", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "t", "operator": "DoesNotExist"}]}, {"t": ""}, False),
    ],
)
def test_label_selectors_match_like_kubernetes(
    selector: dict[str, Any], labels: dict[str, str], matches: bool
) -> None:
    assert LabelSelector.model_validate(selector).matches(labels) is matches


def test_selector_query_text() -> None:
    selector = LabelSelector.model_validate(
        {
            "matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [
                {"key": "t", "operator": "In", "values": ["x", "y"]},
                {"key": "gone", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector.to_query() == "a=1,b=2,t in (x,y),!gone"
    assert LabelSelector.opt_in().to_query() == "tuner.dev/enabled=true"


def test_oom_kills_are_counted_in_their_window_only() -> None:
    pods = [
        pod("a", "ns", {}, oom_at=1000.0, restarts=2),
        pod("b", "ns", {}, oom_at=500.0),
        pod("c", "ns", {}, restarts=1),
    ]
    assert count_ooms(pods, "app", 900.0, 1100.0) == 1
    assert count_ooms(pods, "app", 0.0, 2000.0) == 2
    assert count_ooms(pods, "sidecar", 0.0, 2000.0) == 0
    assert restart_count(pods, "app") == 3
    assert has_recent_oom(pods[0], since=999.0) and not has_recent_oom(pods[1], since=999.0)


def test_refs_name_kind_namespace_and_name() -> None:
    assert parse_ref(FunctionRef("kubernetes", "ksvc.resize.v2", "media")) == (
        KNATIVE_SERVICE,
        "media",
        "resize.v2",
    )
    with pytest.raises(ProviderError):
        parse_ref(FunctionRef("kubernetes", "statefulset.db", "media"))


def test_scaled_to_zero_deployments_restart_nothing() -> None:
    check_disruption(
        DEPLOYMENT, deployment("d", "ns", replicas=0), [], allow_single_replica_restart=False
    )


def test_knative_services_ignore_the_single_replica_rule_but_not_budgets() -> None:
    service = {"metadata": {"name": "s", "namespace": "ns"}, "spec": {}}
    check_disruption(KNATIVE_SERVICE, service, [], allow_single_replica_restart=False)
    budget = pod_disruption_budget("b", "ns", "x", allowed=0)
    budget["spec"]["selector"] = {"matchLabels": {"serving.knative.dev/service": "s"}}
    with pytest.raises(ProviderError, match="PodDisruptionBudget b"):
        check_disruption(KNATIVE_SERVICE, service, [budget], allow_single_replica_restart=False)


def with_status(obj: dict[str, Any], generation: int, **status: Any) -> dict[str, Any]:
    obj["metadata"]["generation"] = generation
    obj["status"] = status
    return obj


@pytest.mark.parametrize(
    ("status", "live"),
    [
        ({"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2}, False),
        ({"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 2}, False),
        ({"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 1}, False),
        ({"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2}, True),
    ],
)
def test_a_deployment_is_live_when_every_replica_is_updated_and_available(
    status: dict[str, Any], live: bool
) -> None:
    assert rolled_out(DEPLOYMENT, with_status(deployment("d", "ns"), 2, **status)) is live


def test_a_stuck_deployment_rollout_fails() -> None:
    stuck = with_status(
        deployment("d", "ns"),
        2,
        observedGeneration=2,
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet d-2 has timed out progressing.",
            }
        ],
    )
    with pytest.raises(ApplyFailedError, match="timed out progressing"):
        rolled_out(DEPLOYMENT, stuck)


def test_a_knative_service_is_live_when_its_newest_revision_is_ready() -> None:
    ready = {"type": "Ready", "status": "True"}
    service = knative_service("s", "ns")
    assert not rolled_out(
        KNATIVE_SERVICE,
        with_status(
            service,
            2,
            observedGeneration=2,
            conditions=[ready],
            latestCreatedRevisionName="s-00002",
            latestReadyRevisionName="s-00001",
        ),
    )
    assert rolled_out(
        KNATIVE_SERVICE,
        with_status(
            service,
            2,
            observedGeneration=2,
            conditions=[ready],
            latestCreatedRevisionName="s-00002",
            latestReadyRevisionName="s-00002",
        ),
    )
    failed = {"type": "Ready", "status": "False", "message": "Revision s-00002 failed"}
    with pytest.raises(ApplyFailedError, match="s-00002 failed"):
        rolled_out(
            KNATIVE_SERVICE, with_status(service, 2, observedGeneration=2, conditions=[failed])
        )


def test_unnamed_knative_containers_get_the_names_knative_gives_them() -> None:
    service = knative_service("resize", "shop")
    template = service["spec"]["template"]["spec"]
    template["containers"] = [{"image": "a"}, {"name": "proxy", "image": "b"}, {"image": "c"}]
    assert container_names(KNATIVE_SERVICE, service) == [
        "user-container-0",
        "proxy",
        "user-container-2",
    ]
    template["containers"] = [{"image": "a"}]
    assert container_names(KNATIVE_SERVICE, service) == ["user-container"]
    plain = deployment("api", "shop")
    del plain["spec"]["template"]["spec"]["containers"][0]["name"]
    assert container_names(DEPLOYMENT, plain) == [""], "only Knative defaults names"
