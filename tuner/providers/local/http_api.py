"""The host's HTTP endpoint on 127.0.0.1: list functions, invoke one, queue records.

Every request needs ``Authorization: Bearer <token>`` (see :mod:`access`); bodies are
capped, invocations rate limited per function, and at most ``concurrent`` requests are
served at once.  Function environments are listed by name only.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

from tuner.providers.local.access import (
    BodyError,
    RateLimiter,
    authorized,
    body_length,
    load_or_create_token,
)
from tuner.providers.local.host import FunctionHost, UnknownFunctionError
from tuner.providers.local.recording import config_to_json

log = structlog.get_logger(__name__)

_POLL_S = 0.05
"""How often a server checks for shutdown: bounds how long close() waits."""

_INVOKE = re.compile(r"^/functions/([\w.-]+)/invoke$")
_RECORDS = re.compile(r"^/functions/([\w.-]+)/records$")


@dataclass(frozen=True, slots=True)
class EndpointLimits:
    """How much the endpoint accepts: body size, request rate, concurrency, slowness."""

    body_bytes: int = 6 * 1024 * 1024
    """The largest request body read; a larger Content-Length is refused unread (413)."""
    invoke_rate_per_s: float = 50.0
    """Sustained invocations (or record posts) per second and function; more get 429."""
    invoke_burst: int = 100
    concurrent: int = 32
    """Requests served at once; more are answered 503 at once."""
    socket_timeout_s: float = 10.0
    """A client that sends nothing for this long is disconnected."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: FunctionHost, port: int, token: str, limits: EndpointLimits) -> None:
        self.host = host
        self.token = token
        self.limits = limits
        self.rate = RateLimiter(limits.invoke_rate_per_s, limits.invoke_burst)
        self.slots = threading.BoundedSemaphore(limits.concurrent)
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def setup(self) -> None:
        """Apply the socket timeout before the request line is read."""
        self.request.settimeout(self.server.limits.socket_timeout_s)
        super().setup()

    def _admitted(self) -> bool:
        """Check the token and take a serving slot; answer and return False otherwise."""
        if not authorized(self.headers.get("Authorization"), self.server.token):
            self.close_connection = True
            self._reply(
                401,
                {"error": "missing or wrong bearer token (see the local-token file)"},
                {"WWW-Authenticate": 'Bearer realm="tuner-local"'},
            )
            return False
        if not self.server.slots.acquire(blocking=False):
            self.close_connection = True
            self._reply(503, {"error": "too many requests at once"}, {"Retry-After": "1"})
            return False
        return True

    def _serve(self, respond: Callable[[], None]) -> None:
        if not self._admitted():
            return
        try:
            respond()
        finally:
            self.server.slots.release()

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        """``GET /functions``: every function with its live configuration."""
        self._serve(self._get)

    def _get(self) -> None:
        if self.path.rstrip("/") != "/functions":
            self._reply(404, {"error": "not found"})
            return
        host = self.server.host
        listing = [
            {
                "name": name,
                "config": _without_secrets(json.loads(config_to_json(host.config(name)))),
                "revision": host.config(name).revision,
                "queued": host.queued(name),
            }
            for name in host.functions()
        ]
        self._reply(200, {"functions": listing})

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        """``POST /functions/<name>/invoke`` (JSON event) or ``.../records`` (JSON list)."""
        self._serve(self._post)

    def _post(self) -> None:
        invoke, records = _INVOKE.match(self.path), _RECORDS.match(self.path)
        if invoke is None and records is None:
            self.close_connection = True  # the body stays unread
            self._reply(404, {"error": "not found"})
            return
        name = (invoke or records).group(1)  # type: ignore[union-attr]
        if name not in self.server.host.specs:  # before the rate limiter keeps a bucket
            self.close_connection = True
            self._reply(404, {"error": f"no function {name!r}"})
            return
        wait_s = self.server.rate.allow(name)
        if wait_s > 0:
            self.close_connection = True
            self._reply(
                429,
                {"error": f"rate limit for {name}: retry in {wait_s:.2f} s"},
                {"Retry-After": str(max(1, round(wait_s)))},
            )
            return
        try:
            payload = self._read_json()
        except BodyError as error:
            self.close_connection = True
            self._reply(error.status, {"error": str(error)})
            return
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
        length = body_length(
            self.headers.get("Content-Length"),
            self.headers.get("Transfer-Encoding"),
            self.server.limits.body_bytes,
        )
        body = self.rfile.read(length) if length else b"null"
        if len(body) < length:
            raise BodyError(400, f"body ended after {len(body)} of {length} bytes")
        return json.loads(body)

    def _reply(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Requests are logged at debug level through structlog."""
        log.debug("http request", request=format % args)


def _without_secrets(config: dict[str, Any]) -> dict[str, Any]:
    """A configuration whose environment shows variable names only, never values."""
    config["environment"] = sorted(config.get("environment") or {})
    return config


class InvokeEndpoint:
    """Serves the host over HTTP on 127.0.0.1 until closed; requests need the token.

    The token is read from (or first written to) ``<state_dir>/local-token``, mode 0600.
    """

    def __init__(
        self, host: FunctionHost, port: int = 0, limits: EndpointLimits | None = None
    ) -> None:
        self.token, self.token_path = load_or_create_token(host.state_dir)
        self._server = _Server(host, port, self.token, limits or EndpointLimits())
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(_POLL_S,), name="local-http", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8080``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def usage(self) -> str:
        """How to call the endpoint, as printed when the daemon starts."""
        return (
            f"local invoke endpoint {self.url} (token in {self.token_path}): "
            f'curl -H "Authorization: Bearer $(cat {self.token_path})" {self.url}/functions'
        )

    def start(self) -> None:
        """Start serving."""
        self._thread.start()
        log.info("invoke endpoint listening", url=self.url, token_file=str(self.token_path))

    def close(self) -> None:
        """Stop serving and free the port."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
