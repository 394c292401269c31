"""Whether a changed workload's new pod template is live, still rolling out, or failed."""

from __future__ import annotations

from tuner.domain.errors import ApplyFailedError
from tuner.providers.kubernetes.api import JsonObject
from tuner.providers.kubernetes.workloads import KNATIVE_SERVICE, WorkloadKind, dig


def _condition(obj: JsonObject, kind: str) -> JsonObject:
    conditions: list[JsonObject] = dig(obj, "status", "conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


def rolled_out(kind: WorkloadKind, obj: JsonObject) -> bool:
    """True when the current generation is live; raise ApplyFailedError when it failed.

    A Deployment is live when all replicas are updated and available, and failed when its
    ``Progressing`` condition reports ``ProgressDeadlineExceeded``.  A Knative Service is
    live when ``Ready`` and its latest created revision is the latest ready one, and failed
    when ``Ready`` is False for the current generation (e.g. the revision cannot start).
    """
    status = obj.get("status") or {}
    name = f"{kind.kind} {dig(obj, 'metadata', 'name')}"
    if (status.get("observedGeneration") or 0) < (dig(obj, "metadata", "generation") or 0):
        return False
    if kind is KNATIVE_SERVICE:
        ready = _condition(obj, "Ready")
        if ready.get("status") == "False":
            raise ApplyFailedError(
                f"{name}: not ready: {ready.get('message') or ready.get('reason')}"
            )
        created = status.get("latestCreatedRevisionName")
        return ready.get("status") == "True" and created == status.get("latestReadyRevisionName")
    progressing = _condition(obj, "Progressing")
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        raise ApplyFailedError(f"{name}: rollout stuck: {progressing.get('message', '')}")
    wanted = dig(obj, "spec", "replicas")
    wanted = 1 if wanted is None else int(wanted)
    updated = status.get("updatedReplicas") or 0
    return bool(updated >= wanted and (status.get("availableReplicas") or 0) >= wanted)
