"""Operator replicas in threads, and polling until a condition holds."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kube_emulation import EmulatorThread

from operators.settings import OperatorSettings
from operators.state import OperatorState
from operators.tuner_operator import run

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RULES = REPO / "rules" / "default.yaml"
OOM_RULES = """\
version: 1
rules:
  - name: oom
    when: ooms > 0.0
    actions: [{action: more-memory, growth: 2.0}]
    severity: critical
    cooldown: 1h
"""
"""One rule: more memory after OOM kills, at most once an hour per workload."""
RESTART_RULES = """\
version: 1
rules:
  - name: restarts
    when: extra.restarts > 0.0
    actions: [{action: more-memory, growth: 2.0}]
    severity: warning
    cooldown: 1h
"""
"""One rule: more memory for containers that restart; no help when memory is not the cause."""


class OperatorThread:
    """One operator replica (Kopf and its state) in a thread of its own."""

    def __init__(
        self,
        cluster: EmulatorThread,
        identity: str,
        state_dir: Path,
        http_port: int | None = None,
        lease_name: str = "tuner-operator",
    ) -> None:
        self.url = f"http://127.0.0.1:{http_port}" if http_port is not None else None
        """Where the replica serves /healthz, /readyz and /metrics (None: nowhere)."""
        self.settings = OperatorSettings(
            http_address=("127.0.0.1", http_port) if http_port is not None else None,
            lease_name=lease_name,
            api_url=cluster.url,
            state_dir=state_dir,
            default_rules=DEFAULT_RULES,
            interval_s=3600.0,
            identity=identity,
            lease_namespace="tuner-system",
            lease_duration_s=2.0,
            lease_renew_s=0.3,
        )
        self.state = OperatorState.create(self.settings)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"operator-{identity}")

    def _main(self) -> None:
        asyncio.run(
            run(self.settings, state=self.state, stop_flag=self._stop, ready_flag=self._ready)
        )

    def start(self) -> OperatorThread:
        """Start the replica and wait until Kopf is ready."""
        self._thread.start()
        assert self._ready.wait(15), "the operator did not get ready"
        return self

    def stop(self) -> None:
        """Stop the replica gracefully (it releases its Lease); stopping twice is harmless."""
        if not self._thread.is_alive():
            return
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the operator did not stop"


def eventually(check: Callable[[], Any], timeout: float = 10.0, step: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(step)
        value = check()
    assert value, f"condition not met within {timeout} s (last value {value!r})"
    return value


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
