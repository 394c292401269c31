"""Fixtures of the operator tests: the emulator helpers' folder on the path, a cluster, a client."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The emulator helpers live with the provider tests; both suites share them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "providers" / "kubernetes"))

from kube_emulation import EmulatorThread, cluster_client, running_cluster  # noqa: E402

from tuner.providers.kubernetes.api import KubeApi  # noqa: E402


@pytest.fixture()
def cluster() -> Iterator[EmulatorThread]:
    """An emulated API server of the test's own (a module may share one instead)."""
    yield from running_cluster()


@pytest.fixture()
def kube(cluster: EmulatorThread) -> Iterator[KubeApi]:
    """A JSON client of the cluster, for seeding and inspecting it."""
    yield from cluster_client(cluster)
