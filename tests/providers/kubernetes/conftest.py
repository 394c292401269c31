"""Fixtures: one emulated Kubernetes API per module, a namespace per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from kube_emulation import EmulatorThread, WallClock, cluster_client, running_cluster

from tuner.providers.kubernetes.api import KubeApi

_namespaces = itertools.count(1)


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmulatorThread]:
    """An emulated API server on 127.0.0.1, shared by a module's tests."""
    yield from running_cluster()


@pytest.fixture()
def kube(cluster: EmulatorThread) -> Iterator[KubeApi]:
    """A JSON client for seeding and inspecting the emulated cluster."""
    yield from cluster_client(cluster)


@pytest.fixture()
def namespace() -> str:
    """A namespace name of this test's own."""
    return f"ns{next(_namespaces)}"


@pytest.fixture()
def clock() -> WallClock:
    """The real time."""
    return WallClock()
