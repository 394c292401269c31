"""Kopf handlers of the tuner operator, registered on an explicit registry.

Run it with ``python -m operators.tuner_operator`` (the container's entry point).
Handlers only translate between Kopf and :class:`operators.state.OperatorState`:

- create/update/resume of a TuningPolicy wires (or rejects) the policy;
- a daemon per policy runs a tuner cycle every interval, on the leader only, and
  sooner when woken;
- a pod watch wakes the policies of a namespace as soon as a container there is
  OOM-killed;
- a background task keeps the Lease that decides which replica leads.

Beside Kopf, :mod:`operators.serving` answers the probes and the metrics scrapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

import kopf
import structlog

from operators.serving import OperatorProbes, serve
from operators.settings import GROUP, PLURAL, VERSION, OperatorSettings
from operators.state import OperatorState
from tuner.providers.kubernetes import signals

log = structlog.get_logger(__name__)

WAIT_STEP_S = 0.5


def build_registry() -> kopf.OperatorRegistry:
    """A fresh registry holding every handler of the operator."""
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        settings.peering.standalone = True  # leadership comes from the Lease
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        state: OperatorState = memo.operator
        memo.leading = asyncio.create_task(_keep_lease(state))
        memo.probes.start(memo.leading)

    @kopf.on.cleanup(registry=registry)
    async def stop(memo: kopf.Memo, **_: Any) -> None:
        memo.leading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await memo.leading
        await asyncio.to_thread(memo.operator.close)

    @kopf.on.login(registry=registry)
    def login(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo | None:
        url = memo.operator.settings.api_url
        if url:
            return kopf.ConnectionInfo(server=url, insecure=True)
        return kopf.login_via_client(**kwargs)

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", registry=registry)
    async def configure(
        spec: kopf.Spec, namespace: str | None, name: str, memo: kopf.Memo, **_: Any
    ) -> None:
        state: OperatorState = memo.operator
        namespace = namespace or ""  # TuningPolicies are namespaced
        await asyncio.to_thread(state.configure, namespace, name, dict(spec))
        state.waker((namespace, name)).set()

    @kopf.on.delete(GROUP, VERSION, PLURAL, optional=True, registry=registry)
    async def remove(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
        await asyncio.to_thread(memo.operator.remove, namespace or "", name)

    @kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=30, registry=registry)
    async def run_policy(
        namespace: str | None, name: str, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any
    ) -> None:
        state: OperatorState = memo.operator
        namespace = namespace or ""
        key = (namespace, name)
        wake = state.waker(key)
        while not stopped:
            wake.clear()
            if state.elector.is_leader:
                try:
                    await asyncio.to_thread(state.step, namespace, name)
                except Exception as exc:  # noqa: BLE001 - a policy's fault never stops the daemon
                    log.error("policy_cycle_failed", policy=f"{namespace}/{name}", error=str(exc))
            deadline = time.monotonic() + state.interval_s(key)
            while not stopped and not wake.is_set() and time.monotonic() < deadline:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), WAIT_STEP_S)
        state.wakers.pop(key, None)

    @kopf.on.event("", "v1", "pods", registry=registry)
    async def pod_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
        pod: dict[str, Any] = dict(event["object"])
        state: OperatorState = memo.operator
        since = time.time() - state.settings.oom_recency_s
        uid = pod.get("metadata", {}).get("uid") or pod.get("metadata", {}).get("name", "")
        kills = {
            (uid, *mark) for mark in signals.oom_kill_marks(pod) if mark[2] >= since
        } - state.seen_ooms
        if kills:
            state.seen_ooms = {k for k in state.seen_ooms if k[3] >= since} | kills
            namespace = pod.get("metadata", {}).get("namespace", "")
            woken = state.wake_namespace(namespace)
            log.info("oom_seen", pod=pod["metadata"].get("name"), namespace=namespace, woken=woken)

    return registry


async def _keep_lease(state: OperatorState) -> None:
    """Run election rounds for as long as the operator runs."""
    while True:
        await asyncio.to_thread(state.elector.try_acquire)
        await asyncio.sleep(state.settings.lease_renew_s)


async def run(
    settings: OperatorSettings,
    *,
    state: OperatorState | None = None,
    stop_flag: threading.Event | asyncio.Event | None = None,
    ready_flag: threading.Event | asyncio.Event | None = None,
) -> None:
    """Run the operator until the stop flag is set (or a signal arrives).

    ``/healthz``, ``/readyz`` and ``/metrics`` are served at ``settings.http_address``
    from before Kopf starts until it has stopped.
    """
    state = state or OperatorState.create(settings)
    probes = OperatorProbes(state)
    server = serve(probes, settings.http_address) if settings.http_address else None
    beating = asyncio.create_task(probes.keep_beating())
    try:
        await kopf.operator(
            registry=build_registry(),
            memo=kopf.Memo(operator=state, probes=probes),
            clusterwide=True,
            standalone=True,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        if server is not None:
            await asyncio.to_thread(server.close)


def main() -> None:
    """Entry point: settings from the environment, then run until SIGTERM."""
    asyncio.run(run(OperatorSettings.from_env()))


if __name__ == "__main__":
    main()
