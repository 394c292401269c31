"""The host's HTTP endpoint on 127.0.0.1: list functions, invoke one, queue records."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

from tuner.providers.local.host import FunctionHost, UnknownFunctionError
from tuner.providers.local.recording import config_to_json

log = structlog.get_logger(__name__)

_POLL_S = 0.05
"""How often a server checks for shutdown: bounds how long close() waits."""

_INVOKE = re.compile(r"^/functions/([\w.-]+)/invoke$")
_RECORDS = re.compile(r"^/functions/([\w.-]+)/records$")
_MAX_BODY = 16 * 1024 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: FunctionHost, port: int) -> None:
        self.host = host
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        """``GET /functions``: every function with its live configuration."""
        if self.path.rstrip("/") != "/functions":
            self._reply(404, {"error": "not found"})
            return
        host = self.server.host
        listing = [
            {
                "name": name,
                "config": json.loads(config_to_json(host.config(name))),
                "revision": host.config(name).revision,
                "queued": host.queued(name),
            }
            for name in host.functions()
        ]
        self._reply(200, {"functions": listing})

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        """``POST /functions/<name>/invoke`` (JSON event) or ``.../records`` (JSON list)."""
        invoke, records = _INVOKE.match(self.path), _RECORDS.match(self.path)
        if invoke is None and records is None:
            self._reply(404, {"error": "not found"})
            return
        try:
            payload = self._read_json()
        except ValueError as error:
            self._reply(400, {"error": f"invalid JSON: {error}"})
            return
        host = self.server.host
        try:
            if invoke is not None:
                self._reply(200, host.invoke(invoke.group(1), payload).as_json())
            elif isinstance(payload, list) and records is not None:
                accepted = host.enqueue(records.group(1), payload)
                self._reply(202, {"accepted": accepted})
            else:
                self._reply(400, {"error": "records must be a JSON list"})
        except UnknownFunctionError as error:
            self._reply(404, {"error": f"no function {error}"})
        except ValueError as error:
            self._reply(400, {"error": str(error)})

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ValueError("body too large")
        body = self.rfile.read(length) if length else b"null"
        return json.loads(body)

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Requests are logged at debug level through structlog."""
        log.debug("http request", request=format % args)


class InvokeEndpoint:
    """Serves the host over HTTP on 127.0.0.1 until closed."""

    def __init__(self, host: FunctionHost, port: int = 0) -> None:
        self._server = _Server(host, port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(_POLL_S,), name="local-http", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8080``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Start serving."""
        self._thread.start()
        log.info("invoke endpoint listening", url=self.url)

    def close(self) -> None:
        """Stop serving and free the port."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
