"""Kubernetes Events that record tuner's changes on the changed workload."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tuner.providers.kubernetes.api import JsonObject
from tuner.providers.kubernetes.workloads import WorkloadKind, dig

REASON_CHANGED = "TunerChanged"
COMPONENT = "tuner"


def object_event(
    api_version: str,
    kind: str,
    obj: JsonObject,
    *,
    reason: str,
    message: str,
    now: float,
    type: str = "Normal",
) -> JsonObject:
    """A ``v1`` Event about ``obj``, reported by tuner."""
    name = dig(obj, "metadata", "name")
    namespace = dig(obj, "metadata", "namespace")
    stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
        "involvedObject": {
            "apiVersion": api_version,
            "kind": kind,
            "name": name,
            "namespace": namespace,
            "uid": dig(obj, "metadata", "uid"),
            "resourceVersion": dig(obj, "metadata", "resourceVersion"),
        },
        "reason": reason,
        "message": message[:1000],
        "type": type,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def change_event(kind: WorkloadKind, obj: JsonObject, message: str, now: float) -> JsonObject:
    """A Normal event with reason ``TunerChanged`` about a changed workload."""
    return object_event(
        kind.api_version, kind.kind, obj, reason=REASON_CHANGED, message=message, now=now
    )


def events_path(namespace: str) -> str:
    """The API path of the namespace's core Events."""
    return f"/api/v1/namespaces/{namespace}/events"
