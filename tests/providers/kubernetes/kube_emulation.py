"""KMock's Kubernetes emulator, made a little more like a real API server, in a thread.

The emulator stores objects and serves real HTTP and watch streams.  This subclass adds
what tuner relies on and the plain emulator leaves out: ``resourceVersion`` with
optimistic concurrency (a stale version gets HTTP 409), ``generation``, ``uid``, and an
instant "deployment controller" that marks every Deployment rollout finished (switch it
off with ``auto_rollout = False``).  It runs its own event loop in a thread, so the
synchronous provider and Kopf (in its own thread) can both talk to it over HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal.k8s import KubernetesError

from tuner.providers.kubernetes.api import KubeApi

Interference = Callable[[kmock.Request], None]

VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


def _info(**fields: Any) -> kmock.ResourceInfo:
    return kmock.ResourceInfo(verbs=VERBS, **fields)


RESOURCES: dict[str, kmock.ResourceInfo] = {
    "apps/v1/deployments": _info(kind="Deployment", namespaced=True),
    "serving.knative.dev/v1/services": _info(kind="Service", namespaced=True),
    "v1/pods": _info(kind="Pod", namespaced=True),
    "v1/services": _info(kind="Service", namespaced=True),
    "v1/nodes": _info(kind="Node", namespaced=False),
    "discovery.k8s.io/v1/endpointslices": _info(kind="EndpointSlice", namespaced=True),
    "v1/events": _info(kind="Event", namespaced=True),
    "v1/configmaps": _info(kind="ConfigMap", namespaced=True),
    "v1/secrets": _info(kind="Secret", namespaced=True),
    "v1/namespaces": _info(kind="Namespace", namespaced=False),
    "policy/v1/poddisruptionbudgets": _info(kind="PodDisruptionBudget", namespaced=True),
    "metrics.k8s.io/v1beta1/pods": _info(kind="PodMetrics", namespaced=True),
    "events.k8s.io/v1/events": _info(kind="Event", namespaced=True),
    "coordination.k8s.io/v1/leases": _info(kind="Lease", namespaced=True),
    "tuner.dev/v1alpha1/tuningpolicies": _info(
        kind="TuningPolicy", namespaced=True, subresources={"status"}
    ),
    "apiextensions.k8s.io/v1/customresourcedefinitions": _info(
        kind="CustomResourceDefinition", namespaced=False
    ),
    "kopf.dev/v1/kopfpeerings": _info(kind="KopfPeering", namespaced=True),
    "kopf.dev/v1/clusterkopfpeerings": _info(kind="ClusterKopfPeering", namespaced=False),
}


class WallClock:
    """The real time, as a tuner clock."""

    def now(self) -> float:
        """POSIX seconds."""
        return time.time()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@attrs.define(kw_only=True)
class VersionedEmulator(kmock.KubernetesEmulator):
    """The KMock emulator with resource versions, conflicts, generations and rollouts."""

    auto_rollout: bool = True
    forbidden: set[str] = attrs.field(factory=set)
    """Resources (``group/version/plural``) every call to which is refused with HTTP 403."""
    interferences: list[Interference] = attrs.field(factory=list)
    """Called (and removed) one per update, before it is checked: a concurrent writer."""
    _versions: Iterator[int] = attrs.field(factory=lambda: itertools.count(1))

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.resource is not None and request.resource in tuple(self.forbidden):
            raise KubernetesError(
                status=403, reason="Forbidden", message=f"{request.resource} is forbidden"
            )
        if request.resource is not None and isinstance(request.data, dict):
            if request.action == kmock.action.UPDATE and request.name is not None:
                if self.interferences:
                    self.interferences.pop(0)(request)
                self._stamp_update(request)
            elif request.action == kmock.action.CREATE:
                self._stamp_create(request)
        return await super()._handle(request)

    def current(self, request: kmock.Request) -> dict[str, Any] | None:
        """The stored object a request addresses, or None."""
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return dict(self.objects[key].raw)

    def bump(self, resource: str, namespace: str | None, name: str, patch: dict[str, Any]) -> None:
        """Change a stored object as another writer would (a new resourceVersion)."""
        obj = self.objects[kmock.resource(resource), namespace, name]
        meta = dict(patch.get("metadata", {}), resourceVersion=str(next(self._versions)))
        obj.patch(dict(patch, metadata=meta))

    def _stamp_create(self, request: kmock.Request) -> None:
        meta = request.data.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        meta["resourceVersion"] = str(next(self._versions))
        meta["generation"] = 1
        if self.auto_rollout and _rolls_out(request):
            request.data["status"] = _rolled_out(request, 1, request.data)

    def _stamp_update(self, request: kmock.Request) -> None:
        current = self.current(request)
        if current is None:
            return
        meta = request.data.setdefault("metadata", {})
        sent = meta.get("resourceVersion")
        stored = current.get("metadata", {}).get("resourceVersion")
        if sent is not None and sent != stored:
            raise KubernetesError(
                status=409,
                reason="Conflict",
                message=f"the object has been modified (sent {sent}, stored {stored})",
            )
        meta["resourceVersion"] = str(next(self._versions))
        if "spec" in request.data and request.subresource is None:
            generation = int(current.get("metadata", {}).get("generation", 0)) + 1
            meta["generation"] = generation
            if self.auto_rollout and _rolls_out(request):
                merged = {"spec": {**current.get("spec", {}), **request.data["spec"]}}
                request.data["status"] = _rolled_out(request, generation, merged)


def _rolls_out(request: kmock.Request) -> bool:
    return bool(request.resource in ("apps/v1/deployments", "serving.knative.dev/v1/services"))


def _rolled_out(request: kmock.Request, generation: int, obj: dict[str, Any]) -> dict[str, Any]:
    """The status a controller writes when the generation is rolled out."""
    if request.resource == "serving.knative.dev/v1/services":
        ready = {"type": "Ready", "status": "True"}
        return {"observedGeneration": generation, "conditions": [ready]}
    replicas = obj.get("spec", {}).get("replicas", 1)
    return {
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    }


class EmulatorThread:
    """Runs a :class:`VersionedEmulator` on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.emulator = VersionedEmulator()
        for name, info in RESOURCES.items():
            self.emulator.resources[name] = info
        self._server = kmock.Server(self.emulator)

    @property
    def url(self) -> str:
        """The API server URL."""
        return f"http://127.0.0.1:{self._server.port}"

    def start(self) -> EmulatorThread:
        """Start serving; returns self."""
        self._thread.start()
        self.run(self._enter())
        return self

    async def _enter(self) -> None:
        await self.emulator.__aenter__()
        await self._server.__aenter__()

    async def _exit(self) -> None:
        await self._server.__aexit__(None, None, None)
        await self.emulator.__aexit__(None, None, None)

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the emulator's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run a plain function on the emulator's loop (to touch its state safely)."""

        async def wrapper() -> Any:
            return fn()

        return self.run(wrapper())

    def requests(self) -> list[kmock.Request]:
        """Every request the emulator received so far, oldest first."""
        return list(self.call(lambda: list(self.emulator._requests)))

    def stop(self) -> None:
        """Stop serving and end the thread."""
        self.run(self._exit())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


def running_cluster() -> Iterator[EmulatorThread]:
    """An emulated API server, stopped when the generator closes (the body of a fixture)."""
    emulated = EmulatorThread().start()
    yield emulated
    emulated.stop()


def cluster_client(cluster: EmulatorThread) -> Iterator[KubeApi]:
    """A JSON client of an emulated cluster, closed when the generator closes."""
    api = KubeApi(cluster.url)
    yield api
    api.close()
