"""Fixtures for the local provider: a real host over small test functions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuner.providers.local.host import FunctionHost
from tuner.providers.local.provider import LocalProvider

HANDLERS = {
    "echo": (
        "memory_mb: 128\ntimeout_s: 5\nlabels: {team: test}\nowner: test-team\n",
        "def handler(event, context):\n"
        "    return {'event': event, 'function': context.function_name,\n"
        "            'memory': context.memory_limit_mb, 'remaining': context.remaining_time_ms()}\n",
    ),
    "failing": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "def handler(event, context):\n"
        "    raise ValueError('bad input: ' + str(event))\n",
    ),
    "sleeper": (
        "memory_mb: 128\ntimeout_s: 1\n",
        "import time\n\n"
        "def handler(event, context):\n"
        "    time.sleep(event['seconds'])\n"
        "    return 'woke up'\n",
    ),
    "hog": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "def handler(event, context):\n"
        "    block = b'x' * (event['mb'] * 1024 * 1024)\n"
        "    return len(block)\n",
    ),
    "lookup": (
        "memory_mb: 128\ntimeout_s: 5\ncache_ttl_s: 0\n",
        "def handler(event, context):\n"
        "    value = context.cache.get(event['key'])\n"
        "    if value is None:\n"
        "        value = context.dependency(event['dependency']).get('/items/' + event['key'])\n"
        "        context.cache.set(event['key'], value)\n"
        "    return value\n",
    ),
    "batcher": (
        "memory_mb: 128\ntimeout_s: 5\nbatch_size: 5\nbatch_window_s: 0.2\n",
        "import time\n\n"
        "def handler(event, context):\n"
        "    time.sleep(0.02 * len(event))\n"
        "    return [record['id'] for record in event]\n",
    ),
}

DEPENDENCIES = """\
slow-db:
  latency_ms: 100
dead-api:
  down: true
"""


class WallClock:
    """The real time, as the loop's clock."""

    def now(self) -> float:
        """POSIX seconds."""
        return time.time()


def write_functions(directory: Path) -> Path:
    """Write the test functions and their dependencies into ``directory``."""
    for name, (declaration, source) in HANDLERS.items():
        function_dir = directory / "functions" / name
        function_dir.mkdir(parents=True)
        (function_dir / "function.yaml").write_text(declaration)
        (function_dir / "handler.py").write_text(source)
    (directory / "dependencies.yaml").write_text(DEPENDENCIES)
    return directory


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
