"""Fixtures for the local provider: a real host over small test functions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from local_world import WallClock, write_functions

from tuner.providers.local.host import FunctionHost
from tuner.providers.local.provider import LocalProvider


@pytest.fixture
def functions_dir(tmp_path: Path) -> Path:
    """A functions directory holding the test functions."""
    return write_functions(tmp_path / "functions-dir")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """The host's state directory."""
    return tmp_path / "state"


@pytest.fixture
def host(functions_dir: Path, state_dir: Path) -> Iterator[FunctionHost]:
    """A started host over the test functions (address-space cap only)."""
    running = FunctionHost(functions_dir, state_dir, WallClock(), max_workers_per_function=4)
    running.start()
    yield running
    running.close()


@pytest.fixture
def provider(functions_dir: Path, state_dir: Path) -> Iterator[LocalProvider]:
    """A started provider with its HTTP endpoint and without demo traffic."""
    host = FunctionHost(functions_dir, state_dir, WallClock(), max_workers_per_function=4)
    running = LocalProvider(host, WallClock(), http_port=0, traffic=False)
    running.start()
    yield running
    running.close()
