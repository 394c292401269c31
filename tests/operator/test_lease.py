"""Lease election against the emulated API: one holder, takeover after expiry, fencing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from kube_emulation import EmulatorThread

from operators.leadership import LeaseElector
from tuner.providers.kubernetes.api import KubeApi

DURATION_S = 1.0


@pytest.fixture()
def kube() -> Iterator[KubeApi]:
    cluster = EmulatorThread().start()
    api = KubeApi(cluster.url)
    yield api
    api.close()
    cluster.stop()


def elector(kube: KubeApi, identity: str) -> LeaseElector:
    return LeaseElector(kube, "tuner-system", "tuner-operator", identity, DURATION_S)


def test_one_holder_at_a_time_and_takeover_when_the_holder_dies(kube: KubeApi) -> None:
    a, b = elector(kube, "a"), elector(kube, "b")
    assert a.try_acquire()
    assert not b.try_acquire()
    assert a.try_acquire(), "the holder renews"
    assert (a.is_leader, b.is_leader) == (True, False)

    time.sleep(DURATION_S + 0.2)  # a stops renewing: it died, or lost the API
    assert not a.is_leader, "a holder that could not renew stops acting by itself"
    assert b.try_acquire()
    assert not a.try_acquire(), "the old holder does not get it back"
    lease = kube.get("/apis/coordination.k8s.io/v1/namespaces/tuner-system/leases/tuner-operator")
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1


def test_a_released_lease_is_taken_at_once(kube: KubeApi) -> None:
    a, b = elector(kube, "a"), elector(kube, "b")
    assert a.try_acquire()
    a.release()
    assert not a.is_leader
    assert b.try_acquire()


def test_replicas_racing_for_a_new_lease_give_one_winner(kube: KubeApi) -> None:
    electors = [elector(kube, name) for name in "abcd"]
    start = threading.Barrier(len(electors))

    def race(candidate: LeaseElector) -> bool:
        start.wait()
        return candidate.try_acquire()

    with ThreadPoolExecutor(len(electors)) as pool:
        results = list(pool.map(race, electors))
    assert sum(results) == 1
    winner = next(e for e, won in zip(electors, results, strict=True) if won)
    lease = kube.get("/apis/coordination.k8s.io/v1/namespaces/tuner-system/leases/tuner-operator")
    assert lease["spec"]["holderIdentity"] == winner.identity
