"""The operator's /healthz, /readyz and /metrics, against the emulated API server."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_emulation import EmulatorThread
from kube_objects import deployment, pod, seed
from operator_threads import OperatorThread, eventually, free_port
from prometheus_client.parser import text_string_to_metric_families

from operators.serving import STALE_S, OperatorProbes, serve
from operators.settings import OperatorSettings
from operators.state import OperatorState
from tuner.domain.errors import ConfigError
from tuner.providers.kubernetes.api import KubeApi

LEASE = "/apis/coordination.k8s.io/v1/namespaces/tuner-system/leases/tuner-operator"
ALLOWED_LABELS = {
    "rule",
    "action",
    "outcome",
    "provider",
    "operation",
    "result",
    "state",
    "channel",
    "policy",
    "step",
    "le",
    "version",
}
"""Bounded labels only: nothing names a function or a workload."""


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def policy(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tuner.dev/v1alpha1",
        "kind": "TuningPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def last_cycle(kube: KubeApi, namespace: str, name: str) -> str | None:
    path = f"/apis/tuner.dev/v1alpha1/namespaces/{namespace}/tuningpolicies/{name}"
    return (kube.get(path).get("status") or {}).get("lastCycle")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture()
def replica(cluster: EmulatorThread, tmp_path: Path) -> Iterator[OperatorThread]:
    operator = OperatorThread(cluster, "solo", tmp_path / "state", http_port=free_port())
    yield operator
    operator.stop()


def test_a_standby_is_ready_and_a_leader_only_while_every_policy_cycles(
    replica: OperatorThread, kube: KubeApi
) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    kube.create(
        LEASE.rsplit("/", 1)[0],
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "tuner-operator", "namespace": "tuner-system"},
            "spec": {"holderIdentity": "other", "leaseDurationSeconds": 3600, "renewTime": now},
        },
    )
    for name in ("a", "b"):
        seed(kube, policy(name, "shop", interval="1s"))
    replica.start()
    base = replica.url
    assert get(f"{base}/healthz") == (200, "ok, standby\n")
    eventually(lambda: len(replica.state.wired()) == 2)
    status, why = get(f"{base}/readyz")
    assert (status, why.split(":")[0]) == (200, "standby"), why

    hang = replica.state._policy_lock(("shop", "a"))  # noqa: SLF001 - a cycle of "a" that hangs
    hang.acquire()
    try:
        kube.patch(LEASE, {"spec": {"holderIdentity": None}})  # the other replica lets go
        eventually(lambda: replica.state.elector.is_leader)
        eventually(lambda: last_cycle(kube, "shop", "b"), timeout=10)
        status, why = get(f"{base}/readyz")
        assert status == 503, why
        assert "shop/a: no cycle has finished yet" in why
        assert "shop/b" not in why
    finally:
        hang.release()
    eventually(lambda: get(f"{base}/readyz") == (200, "leader solo, 2 policies cycling\n"))
    assert get(f"{base}/healthz") == (200, "ok, leader\n")

    with hang:  # the next cycle of "a" hangs for longer than three intervals
        overdue = eventually(lambda: (r := get(f"{base}/readyz"))[0] == 503 and r, timeout=8)
        assert "shop/a: the last cycle finished" in overdue[1]
        assert "(interval 1 s)" in overdue[1]
        assert get(f"{base}/healthz")[0] == 200  # overdue cycles are not a dead process
    eventually(lambda: get(f"{base}/readyz")[0] == 200)


def test_metrics_count_the_cycles_of_every_policy_and_pass_promtool(
    replica: OperatorThread, kube: KubeApi
) -> None:
    replica.start()
    eventually(lambda: replica.state.elector.is_leader)
    assert get(f"{replica.url}/readyz") == (200, "leader solo, 0 policies cycling\n")
    seed(
        kube,
        deployment("api", "one", memory="256Mi"),
        pod("api-1", "one", {"app": "api"}),
    )
    seed(kube, policy("p", "one"), policy("q", "two"))
    eventually(lambda: last_cycle(kube, "one", "p") and last_cycle(kube, "two", "q"))

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return samples(get(f"{replica.url}/metrics")[1])

    first = scrape()
    assert first[("tuner_cycles_total", ())] == 2
    assert first[("tuner_policy_cycles_total", (("policy", "one/p"),))] == 1
    assert first[("tuner_policy_cycles_total", (("policy", "two/q"),))] == 1
    assert first[("tuner_functions", (("provider", "kubernetes"),))] == 1
    assert first[("tuner_operator_leader", ())] == 1
    assert first[("tuner_operator_policies", (("state", "wired"),))] == 2

    kube.patch(  # an OOM kill in "one" wakes that namespace's policy only
        "/api/v1/namespaces/one/pods/api-1",
        pod("api-1", "one", {"app": "api"}, oom_at=time.time(), restarts=1),
    )
    after = eventually(lambda: (s := scrape())[("tuner_cycles_total", ())] == 3 and s)
    assert after[("tuner_policy_cycles_total", (("policy", "one/p"),))] == 2
    assert after[("tuner_policy_cycles_total", (("policy", "two/q"),))] == 1
    recommended = (("action", "more-memory"), ("outcome", "recommended"), ("rule", "oom"))
    assert after[("tuner_decisions_total", recommended)] == 1
    assert after[("tuner_cycle_duration_seconds_count", ())] == 3
    calls = [v for (name, _), v in after.items() if name == "tuner_provider_calls_total"]
    assert sum(calls) >= 3  # the provider's calls of all three cycles
    assert {k for _, labels in after for k, _ in labels} <= ALLOWED_LABELS

    promtool = shutil.which("promtool")
    assert promtool, "Debian's prometheus package provides promtool"
    text = get(f"{replica.url}/metrics")[1]
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_probes_before_start_a_stuck_loop_and_a_stopped_election(cluster: EmulatorThread) -> None:
    state = OperatorState.create(OperatorSettings(api_url=cluster.url, identity="solo"))
    now = [100.0]
    probes = OperatorProbes(state, clock=lambda: now[0])
    assert probes.ready() == (False, "starting: Kopf has not started yet")
    assert probes.alive() == (True, "ok, standby")
    now[0] += STALE_S + 1
    assert probes.alive() == (
        False,
        f"the operator's event loop has not run for {STALE_S + 1:.0f} s",
    )

    async def stopped_election() -> None:
        async def fails() -> None:
            raise RuntimeError("lost")

        task = asyncio.create_task(fails())
        await asyncio.gather(task, return_exceptions=True)
        probes.start(task)

    asyncio.run(stopped_election())
    probes.last_beat = now[0]
    assert probes.alive() == (False, "the leader election has stopped")
    standby = (True, "standby: solo does not hold the Lease and is ready to take over")
    assert probes.ready() == standby
    state.api.close()


def test_a_taken_port_is_an_error_naming_the_setting(cluster: EmulatorThread) -> None:
    state = OperatorState.create(OperatorSettings(api_url=cluster.url))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"TUNER_HTTP_ADDRESS.*127.0.0.1:{port}"):
            serve(OperatorProbes(state), ("127.0.0.1", port))
    state.api.close()


@pytest.mark.parametrize(
    ("text", "address"),
    [("0.0.0.0:9090", ("0.0.0.0", 9090)), ("off", None), (None, ("0.0.0.0", 8780))],  # noqa: S104
)
def test_the_address_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, text: str | None, address: tuple[str, int] | None
) -> None:
    if text is None:
        monkeypatch.delenv("TUNER_HTTP_ADDRESS", raising=False)
    else:
        monkeypatch.setenv("TUNER_HTTP_ADDRESS", text)
    assert OperatorSettings.from_env().http_address == address


def test_a_bad_address_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNER_HTTP_ADDRESS", "8780")
    with pytest.raises(ConfigError, match="TUNER_HTTP_ADDRESS.*HOST:PORT"):
        OperatorSettings.from_env()
