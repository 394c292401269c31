"""Named dependencies the host starts on 127.0.0.1: slow HTTP stubs and dead ports."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog

from tuner.providers.local.specs import DependencySpec

log = structlog.get_logger(__name__)

_POLL_S = 0.05
"""How often a server checks for shutdown: bounds how long close() waits."""


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, spec: DependencySpec) -> None:
        self.spec = spec
        super().__init__(("127.0.0.1", 0), _StubHandler)


class _StubHandler(BaseHTTPRequestHandler):
    server: _StubServer

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        """Answer after the dependency's latency with a small JSON body."""
        spec = self.server.spec
        delay_ms = spec.latency_ms + random.uniform(-spec.jitter_ms, spec.jitter_ms)
        time.sleep(max(0.0, delay_ms) / 1000)
        body = json.dumps({"dependency": spec.name, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: dependency calls are recorded by the host, not logged per request."""


class DependencyStubs:
    """Runs every declared dependency; a ``down`` one is a bound port nobody listens on."""

    def __init__(self, specs: Mapping[str, DependencySpec]) -> None:
        self._specs = dict(specs)
        self._servers: list[_StubServer] = []
        self._dead_sockets: list[socket.socket] = []
        self.urls: dict[str, str] = {}

    def start(self) -> dict[str, str]:
        """Start the stubs and return each dependency's base URL."""
        for name, spec in self._specs.items():
            if spec.down:
                # Bound but not listening: connections are refused at once, and the port
                # stays reserved so no other server can take it.
                dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                dead.bind(("127.0.0.1", 0))
                self._dead_sockets.append(dead)
                port = dead.getsockname()[1]
            else:
                server = _StubServer(spec)
                threading.Thread(
                    target=server.serve_forever,
                    args=(_POLL_S,),
                    name=f"stub-{name}",
                    daemon=True,
                ).start()
                self._servers.append(server)
                port = server.server_address[1]
            self.urls[name] = f"http://127.0.0.1:{port}"
            log.debug("dependency started", dependency=name, url=self.urls[name], down=spec.down)
        return dict(self.urls)

    def close(self) -> None:
        """Stop every stub and free its port."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for dead in self._dead_sockets:
            dead.close()
        self._servers.clear()
        self._dead_sockets.clear()
