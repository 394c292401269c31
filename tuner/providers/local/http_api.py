"""The host's HTTP endpoint on 127.0.0.1: list functions, invoke one, queue records.

Every request needs ``Authorization: Bearer <token>`` (see :mod:`access`).  The token,
the path, the rate limit and the declared body length are all checked on the request's
head, before a byte of its body is read; bodies are capped, invocations rate limited per
function, and at most ``concurrent`` requests served at once.  The server is a
:class:`~tuner.serving.bounded.BoundedServer`: its connections are capped and each
request must arrive whole within ``request_s``.  Function environments are listed by
name only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import structlog

from tuner.domain.errors import ConfigError, Problem
from tuner.providers.local.access import RateLimiter, authorized, load_or_create_token
from tuner.providers.local.host import FunctionHost, UnknownFunctionError
from tuner.providers.local.recording import config_to_json
from tuner.serving.bounded import BoundedServer, ServerLimits, json_reply
from tuner.serving.exchanges import BodyError, Reply, Request, body_length

log = structlog.get_logger(__name__)

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
    connections: int = 64
    """Connections held open at once; more are cut as soon as they arrive."""
    request_s: float = 10.0
    """A request (headers and body) must arrive whole within this long."""

    def server(self) -> ServerLimits:
        """The bounds of the HTTP server itself."""
        return ServerLimits(
            connections=self.connections,
            request_s=self.request_s,
            body_bytes=self.body_bytes,
            workers=self.concurrent,
            concurrent=self.concurrent,
        )


class _Invocations:
    """Answers the endpoint's requests (the bounded server's handler)."""

    def __init__(self, host: FunctionHost, token: str, limits: EndpointLimits) -> None:
        self.host = host
        self.token = token
        self.limits = limits
        self.rate = RateLimiter(limits.invoke_rate_per_s, limits.invoke_burst)

    def admit(self, request: Request) -> Reply | None:
        """Refuse from the head alone: no token, no such path or function, over the rate or size."""
        if not authorized(request.header("Authorization"), self.token):
            return json_reply(
                401,
                {"error": "missing or wrong bearer token (see the local-token file)"},
                headers={"WWW-Authenticate": 'Bearer realm="tuner-local"'},
                close=True,
            )
        if request.method == "GET":
            return None
        if request.method != "POST":
            return json_reply(
                405, {"error": "GET or POST"}, headers={"Allow": "GET, POST"}, close=True
            )
        found = _INVOKE.match(request.path) or _RECORDS.match(request.path)
        if found is None:
            return json_reply(404, {"error": "not found"}, close=True)
        name = found.group(1)
        if name not in self.host.specs:  # before the rate limiter keeps a bucket
            return json_reply(404, {"error": f"no function {name!r}"}, close=True)
        wait_s = self.rate.allow(name)
        if wait_s > 0:
            return json_reply(
                429,
                {"error": f"rate limit for {name}: retry in {wait_s:.2f} s"},
                headers={"Retry-After": str(max(1, round(wait_s)))},
                close=True,
            )
        try:
            body_length(
                request.header("Content-Length"),
                request.header("Transfer-Encoding"),
                self.limits.body_bytes,
                required=True,
            )
        except BodyError as error:
            return json_reply(error.status, {"error": str(error)}, close=True)
        return None

    def respond(self, request: Request, body: bytes) -> Reply:
        """``GET /functions``, ``POST /functions/<name>/invoke`` or ``.../records``."""
        if request.method == "GET":
            return self._listing(request)
        try:
            payload = json.loads(body) if body else None
        except ValueError as error:
            return json_reply(400, {"error": f"invalid JSON: {error}"})
        invoke = _INVOKE.match(request.path)
        try:
            if invoke is not None:
                return json_reply(200, self.host.invoke(invoke.group(1), payload).as_json())
            if not isinstance(payload, list):
                return json_reply(400, {"error": "records must be a JSON list"})
            name = request.path.split("/")[2]
            return json_reply(202, {"accepted": self.host.enqueue(name, payload)})
        except UnknownFunctionError as error:
            return json_reply(404, {"error": f"no function {error}"})
        except ValueError as error:
            return json_reply(400, {"error": str(error)})

    def _listing(self, request: Request) -> Reply:
        if request.path.rstrip("/") != "/functions":
            return json_reply(404, {"error": "not found"})
        host = self.host
        listing = [
            {
                "name": name,
                "config": _without_secrets(json.loads(config_to_json(host.config(name)))),
                "revision": host.config(name).revision,
                "queued": host.queued(name),
            }
            for name in host.functions()
        ]
        return json_reply(200, {"functions": listing})


def _without_secrets(config: dict[str, Any]) -> dict[str, Any]:
    """A configuration whose environment shows variable names only, never values."""
    config["environment"] = sorted(config.get("environment") or {})
    return config


class InvokeEndpoint:
    """Serves the host over HTTP on 127.0.0.1 until closed; requests need the token.

    The token is read from (or first written to) ``<state_dir>/local-token``, mode 0600.
    The port is bound here: a port in use is a :class:`ConfigError` naming ``http_port``.
    """

    def __init__(
        self, host: FunctionHost, port: int = 0, limits: EndpointLimits | None = None
    ) -> None:
        limits = limits or EndpointLimits()
        self.token, self.token_path = load_or_create_token(host.state_dir)
        try:
            self._server = BoundedServer(
                "local-http",
                _Invocations(host, self.token, limits),
                [("127.0.0.1", port)],
                limits.server(),
            )
        except OSError as error:
            why = f"cannot listen on 127.0.0.1:{port}: {error.strerror}; choose another port or 0"
            raise ConfigError([Problem("local provider", None, why, field="http_port")]) from None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8080``."""
        host, port = self._server.addresses[0]
        return f"http://{host}:{port}"

    def usage(self) -> str:
        """How to call the endpoint, as printed when the daemon starts."""
        return (
            f"local invoke endpoint {self.url} (token in {self.token_path}): "
            f'curl -H "Authorization: Bearer $(cat {self.token_path})" {self.url}/functions'
        )

    def start(self) -> None:
        """Start serving."""
        self._server.start()
        log.info("invoke endpoint listening", url=self.url, token_file=str(self.token_path))

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.close()
