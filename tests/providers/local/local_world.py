"""Test functions for the local host, written into a temporary functions directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tuner.providers.local.host import FunctionHost
from tuner.providers.local.trace_executor import Tracing
from tuner.providers.local.tracing_specs import TracingSpec

HANDLERS = {
    "echo": (
        "memory_mb: 128\ntimeout_s: 5\nlabels: {team: test}\nowner: test-team\n",
        "def handler(event, context):\n"
        "    return {'event': event, 'function': context.function_name,\n"
        "            'memory': context.memory_limit_mb,\n"
        "            'remaining': context.remaining_time_ms()}\n",
    ),
    "failing": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "def handler(event, context):\n    raise ValueError('bad input: ' + str(event))\n",
    ),
    "crasher": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "import os\n\ndef handler(event, context):\n    os._exit(3)\n",
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


def write_handlers(directory: Path, handlers: dict[str, tuple[str, str]]) -> Path:
    """Write functions (name -> function.yaml, handler.py) into a functions directory."""
    for name, (declaration, source) in handlers.items():
        function_dir = directory / "functions" / name
        function_dir.mkdir(parents=True)
        (function_dir / "function.yaml").write_text(declaration)
        (function_dir / "handler.py").write_text(source)
    return directory


def write_functions(directory: Path) -> Path:
    """Write the test functions and their dependencies into ``directory``."""
    write_handlers(directory, HANDLERS)
    (directory / "dependencies.yaml").write_text(DEPENDENCIES)
    return directory


def traced_host(
    app: Path, state: Path, default: TracingSpec | None = None, **options: Any
) -> FunctionHost:
    """A host (not started) over ``app`` that traces as each function declares, else as
    ``default`` (off unless given), with its traces under ``state/traces`` and a seeded
    choice of the invocations to trace."""
    tracing = Tracing(state / "traces", default or TracingSpec(mode="off"), seed=1)
    return FunctionHost(app, state, WallClock(), tracing=tracing, **options)
