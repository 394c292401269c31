"""Named dependencies the host starts on 127.0.0.1: slow HTTP stubs and dead ports.

The stubs share one :class:`~tuner.serving.bounded.BoundedServer` (one port each), so
that handlers, which can reach any loopback port, cannot hold the daemon's files open
through them.  A caller that goes away mid-call (its worker was killed at its timeout)
costs one line in the log, never a traceback.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Mapping

import structlog

from tuner.providers.local.specs import DependencySpec
from tuner.serving.bounded import BoundedServer, ServerLimits
from tuner.serving.exchanges import Reply, Request

log = structlog.get_logger(__name__)

LIMITS = ServerLimits(connections=128, body_bytes=0, workers=64, concurrent=128)
"""Every worker of every function may be in a dependency call at once."""


class _Stubs:
    """Answers each stub's requests after its latency (the bounded server's handler)."""

    def __init__(self, by_port: Mapping[int, DependencySpec]) -> None:
        self.by_port = by_port

    def admit(self, request: Request) -> Reply | None:
        """Any request to a stub's port is answered."""
        if request.port not in self.by_port:
            return Reply(404, close=True)
        return None

    def respond(self, request: Request, body: bytes) -> Reply:
        """Answer after the dependency's latency with a small JSON body."""
        spec = self.by_port[request.port]
        delay_ms = spec.distance_ms + spec.latency_ms
        delay_ms += random.uniform(-spec.jitter_ms, spec.jitter_ms)
        time.sleep(max(0.0, delay_ms) / 1000)
        return Reply(200, json.dumps({"dependency": spec.name, "path": request.path}).encode())


class DependencyStubs:
    """Runs every declared dependency; a ``down`` one is a bound port nobody listens on."""

    def __init__(self, specs: Mapping[str, DependencySpec]) -> None:
        self._specs = dict(specs)
        self._server: BoundedServer | None = None
        self._dead_sockets: list[socket.socket] = []
        self.urls: dict[str, str] = {}

    def start(self) -> dict[str, str]:
        """Start the stubs and return each dependency's base URL."""
        live = [spec for spec in self._specs.values() if not spec.down]
        if live:
            by_port: dict[int, DependencySpec] = {}
            self._server = BoundedServer(
                "dependency-stubs", _Stubs(by_port), [("127.0.0.1", 0)] * len(live), LIMITS
            )
            for spec, (_, port) in zip(live, self._server.addresses, strict=True):
                by_port[port] = spec
                self.urls[spec.name] = f"http://127.0.0.1:{port}"
            self._server.start()
        for spec in self._specs.values():
            if spec.down:
                # Bound but not listening: connections are refused at once, and the port
                # stays reserved so no other server can take it.
                dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                dead.bind(("127.0.0.1", 0))
                self._dead_sockets.append(dead)
                self.urls[spec.name] = f"http://127.0.0.1:{dead.getsockname()[1]}"
        for name, url in self.urls.items():
            log.debug("dependency started", dependency=name, url=url, down=self._specs[name].down)
        return dict(self.urls)

    def close(self) -> None:
        """Stop every stub and free its port."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for dead in self._dead_sockets:
            dead.close()
        self._dead_sockets.clear()
