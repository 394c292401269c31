"""Leader election with a ``coordination.k8s.io/v1`` Lease, so two replicas never both act.

Every replica tries to hold the Lease: it creates it, renews it while it holds it, or
takes it over once the holder has not renewed for ``leaseDurationSeconds``.  All writes
carry the Lease's resourceVersion, so two replicas racing for it get one 409 and one
success.  A replica counts as leader only while its last renewal is younger than the
lease duration, so a replica cut off from the API stops acting before another takes over.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import structlog

from tuner.domain.errors import ConflictError, ProviderError
from tuner.providers.kubernetes.api import KubeApi, NotFoundError

log = structlog.get_logger(__name__)


def _micro_time(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str | None) -> float:
    if not text:
        return 0.0
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class LeaseElector:
    """Holds (or waits for) one Lease on behalf of one replica."""

    def __init__(
        self, api: KubeApi, namespace: str, name: str, identity: str, duration_s: float
    ) -> None:
        """Compete for Lease ``namespace/name`` as ``identity``."""
        self._api = api
        self._path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self._collection = self._path.rsplit("/", 1)[0]
        self._name = name
        self._namespace = namespace
        self.identity = identity
        self.duration_s = duration_s
        self._renewed_at = float("-inf")
        self.term = 0
        """How many times this replica became leader; a new term means taking over."""

    @property
    def is_leader(self) -> bool:
        """True while this replica holds a Lease it renewed within the lease duration."""
        return time.monotonic() - self._renewed_at < self.duration_s

    def try_acquire(self) -> bool:
        """One election round: create, renew or take over the Lease; True when held."""
        try:
            held = self._round()
        except (ConflictError, NotFoundError):
            held = False  # another replica wrote first; look again next round
        except ProviderError as exc:
            log.warning("lease_unreachable", error=str(exc))
            return self.is_leader  # keep leading until the lease would have expired
        was_leader = self.is_leader
        if held:
            self._renewed_at = time.monotonic()
        else:
            self._renewed_at = float("-inf")
        if held and not was_leader:
            self.term += 1
        if held != was_leader:
            log.info("leadership_changed", identity=self.identity, leader=held, term=self.term)
        return held

    def _round(self) -> bool:
        now = time.time()
        try:
            lease = self._api.get(self._path)
        except NotFoundError:
            self._api.create(self._collection, self._lease_body(now, transitions=0))
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse_time(spec.get("renewTime"))
        duration = float(spec.get("leaseDurationSeconds") or self.duration_s)
        if holder == self.identity:
            patch = {"spec": {"renewTime": _micro_time(now)}}
        elif not holder or now - renewed > duration:
            transitions = int(spec.get("leaseTransitions") or 0) + 1
            patch = self._lease_body(now, transitions)
        else:
            return False
        patch["metadata"] = {"resourceVersion": lease["metadata"].get("resourceVersion")}
        self._api.patch(self._path, patch)
        return True

    def release(self) -> None:
        """Give the Lease up (on shutdown) so a standby takes over at once."""
        if not self.is_leader:
            return
        self._renewed_at = float("-inf")
        try:
            lease = self._api.get(self._path)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                self._api.patch(
                    self._path,
                    {
                        "metadata": {"resourceVersion": lease["metadata"].get("resourceVersion")},
                        "spec": {"holderIdentity": None, "renewTime": None},
                    },
                )
        except ProviderError as exc:
            log.warning("lease_not_released", error=str(exc))

    def _lease_body(self, now: float, transitions: int) -> dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self._name, "namespace": self._namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": max(1, round(self.duration_s)),
                "acquireTime": _micro_time(now),
                "renewTime": _micro_time(now),
                "leaseTransitions": transitions,
            },
        }
