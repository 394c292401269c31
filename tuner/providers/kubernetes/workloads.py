"""The workload kinds tuner manages on Kubernetes and how their configuration is read.

A function is a Deployment (``apps/v1``) or a Knative Service (``serving.knative.dev/v1``).
Its :class:`~tuner.domain.model.FunctionRef` is ``kubernetes:<namespace>/<kind>.<name>``, e.g.
``kubernetes:shop/deployment.checkout`` or ``kubernetes:shop/ksvc.resize``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tuner.domain.errors import ProviderError
from tuner.domain.model import FunctionConfig, FunctionRef
from tuner.providers.kubernetes.affinity import zone_affinity
from tuner.providers.kubernetes.api import JsonObject
from tuner.providers.kubernetes.quantities import parse_mb

CONTAINER_ANNOTATION = "tuner.dev/container"
"""Names the container tuner sizes when a workload has several."""
OWNER_LABEL = "tuner.dev/owner"
"""The team or address that is told about this workload."""
KNATIVE_SERVICE_LABEL = "serving.knative.dev/service"


@dataclass(frozen=True, slots=True)
class WorkloadKind:
    """One kind of workload: where its objects live in the API and how to read them."""

    short: str
    kind: str
    api_version: str
    plural: str
    restarts_pods: bool
    """True when a new pod template replaces running pods (a Deployment rollout)."""
    required: bool = True
    """False for an add-on's kind (Knative): a cluster without it, or a role without access
    to it, leaves that kind untuned instead of failing the provider."""

    def collection_path(self, namespace: str) -> str:
        """The API path listing this kind in a namespace."""
        return f"/apis/{self.api_version}/namespaces/{namespace}/{self.plural}"

    def object_path(self, namespace: str, name: str) -> str:
        """The API path of one object."""
        return f"{self.collection_path(namespace)}/{name}"

    def pod_labels(self, obj: JsonObject) -> dict[str, str]:
        """Labels that every pod of this workload carries."""
        if self is KNATIVE_SERVICE:
            return {KNATIVE_SERVICE_LABEL: obj["metadata"]["name"]}
        labels: dict[str, str] = dig(obj, "spec", "selector", "matchLabels") or {}
        return labels


DEPLOYMENT = WorkloadKind("deployment", "Deployment", "apps/v1", "deployments", True)
KNATIVE_SERVICE = WorkloadKind(
    "ksvc", "Service", "serving.knative.dev/v1", "services", restarts_pods=False, required=False
)
KNATIVE_USER_CONTAINER = "user-container"
"""The name Knative's defaulting webhook gives an unnamed container of a Service."""
KINDS: Mapping[str, WorkloadKind] = {k.short: k for k in (DEPLOYMENT, KNATIVE_SERVICE)}


def dig(obj: Mapping[str, Any], *keys: str) -> Any:
    """The value at a path of keys, or None where any part is missing."""
    value: Any = obj
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def ref_for(provider: str, kind: WorkloadKind, obj: JsonObject) -> FunctionRef:
    """The function reference of a workload object."""
    meta = obj["metadata"]
    name = f"{kind.short}.{meta['name']}"
    return FunctionRef(provider=provider, scope=meta["namespace"], name=name)


def parse_ref(ref: FunctionRef) -> tuple[WorkloadKind, str, str]:
    """The kind, namespace and name a function reference points to."""
    short, _, name = ref.name.partition(".")
    if short not in KINDS or not name or not ref.scope:
        raise ProviderError(f"{ref}: not a Kubernetes workload reference (<ns>/<kind>.<name>)")
    return KINDS[short], ref.scope, name


def is_knative_managed(obj: JsonObject) -> bool:
    """True for Deployments that Knative created for a revision (tuned through the Service)."""
    labels = dig(obj, "metadata", "labels") or {}
    owners = dig(obj, "metadata", "ownerReferences") or []
    return "serving.knative.dev/revision" in labels or any(
        o.get("kind") == "Revision" for o in owners
    )


def containers(obj: JsonObject) -> list[JsonObject]:
    """The pod template's containers."""
    found: list[JsonObject] = dig(obj, "spec", "template", "spec", "containers") or []
    return found


def container_names(kind: WorkloadKind, obj: JsonObject) -> list[str]:
    """The names of the pod template's containers, as the workload's controller sees them.

    Knative names an unnamed container when its defaulting webhook runs: ``user-container``
    when it is the only one, ``user-container-<index>`` among several.  A Service stored
    before the webhook ran (or read from a manifest) has no name yet; it gets the same one
    here, so tuner reads and patches the container Knative will run.
    """
    found = containers(obj)
    names = [str(c.get("name") or "") for c in found]
    if kind is KNATIVE_SERVICE:
        if len(names) == 1:
            return [names[0] or KNATIVE_USER_CONTAINER]
        return [name or f"{KNATIVE_USER_CONTAINER}-{i}" for i, name in enumerate(names)]
    return names


def named_container(kind: WorkloadKind, obj: JsonObject, name: str) -> JsonObject | None:
    """The container with this (possibly defaulted) name, or None."""
    for container, found in zip(containers(obj), container_names(kind, obj), strict=True):
        if found == name:
            return container
    return None


def container_name(kind: WorkloadKind, obj: JsonObject, preferred: str | None) -> str | None:
    """The container tuner sizes: the annotated one, the configured one, or the first."""
    names = container_names(kind, obj)
    wanted = (dig(obj, "metadata", "annotations") or {}).get(CONTAINER_ANNOTATION) or preferred
    if wanted:
        return wanted if wanted in names else None
    return names[0] if names else None


def container_memory_mb(container: JsonObject) -> int | None:
    """The container's memory limit (or, without one, its request) in MB."""
    resources = container.get("resources") or {}
    quantity = dig(resources, "limits", "memory") or dig(resources, "requests", "memory")
    return parse_mb(quantity) if quantity is not None else None


def read_config(kind: WorkloadKind, obj: JsonObject, container: str) -> FunctionConfig | None:
    """The tunable configuration of a workload, or None when its memory is not set."""
    match = named_container(kind, obj, container)
    memory = container_memory_mb(match) if match is not None else None
    if memory is None:
        return None
    pod_spec = dig(obj, "spec", "template", "spec") or {}
    concurrency = pod_spec.get("containerConcurrency")
    timeout = pod_spec.get("timeoutSeconds")
    return FunctionConfig(
        memory_mb=memory,
        concurrency=int(concurrency) if concurrency is not None else None,
        timeout_s=float(timeout) if timeout is not None else None,
        zone_affinity=zone_affinity(obj) if kind is DEPLOYMENT else None,
        revision=str(dig(obj, "metadata", "resourceVersion") or ""),
    )
