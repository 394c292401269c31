"""Checks that a pod-template change may restart a workload's pods right now."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError

from tuner.domain.errors import ProviderError
from tuner.providers.kubernetes.api import JsonObject
from tuner.providers.kubernetes.selectors import LabelSelector
from tuner.providers.kubernetes.workloads import WorkloadKind, dig


def check_disruption(
    kind: WorkloadKind,
    obj: JsonObject,
    budgets: Iterable[JsonObject],
    *,
    allow_single_replica_restart: bool,
) -> None:
    """Raise :class:`ProviderError` when changing the pod template would break a promise.

    A Deployment with exactly one replica loses its only pod during the rollout unless
    the policy allows it.  A PodDisruptionBudget covering the pods that currently allows
    no disruption (``status.disruptionsAllowed == 0``) holds every rollout back.
    Knative Services start a new revision beside the old one, so only budgets apply.
    """
    name = f"{kind.kind} {dig(obj, 'metadata', 'namespace')}/{dig(obj, 'metadata', 'name')}"
    replicas = dig(obj, "spec", "replicas")
    if kind.restarts_pods and replicas in (None, 1) and not allow_single_replica_restart:
        raise ProviderError(
            f"{name} has a single replica: changing it restarts its only pod "
            "(allow_single_replica_restart is off)"
        )
    pod_labels = dict(kind.pod_labels(obj))
    pod_labels.update(dig(obj, "spec", "template", "metadata", "labels") or {})
    for budget in budgets:
        if _covers(budget, pod_labels) and (dig(budget, "status", "disruptionsAllowed") or 0) < 1:
            raise ProviderError(
                f"{name}: PodDisruptionBudget {dig(budget, 'metadata', 'name')} "
                "allows no disruption now"
            )


def _covers(budget: JsonObject, pod_labels: dict[str, str]) -> bool:
    raw = dig(budget, "spec", "selector")
    if not raw:
        return False
    try:
        selector = LabelSelector.model_validate(raw)
    except ValidationError:
        return False
    return selector.matches(pod_labels)
