"""The daemon's one HTTP server: health, readiness, metrics, the JSON API and the dashboard.

It is a :class:`~tuner.serving.bounded.BoundedServer` (uvicorn, with a cap on connections
and a deadline for each request: see ``docs/security.md``).  Every answer is a read of
in-memory state or one indexed query, built in milliseconds on one of a few threads, so a
slow client never holds up a scrape.  It listens on 127.0.0.1 unless told otherwise, and
then answers only requests addressed to a loopback name (a page on another site cannot
reach it through DNS rebinding).  An action (``POST``) is refused on its headers alone,
before its body is read, unless it carries the token.
"""

from __future__ import annotations

import functools
import mimetypes
from collections.abc import Callable
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import structlog

from tuner.daemon.addresses import LOOPBACK_NAMES, is_loopback
from tuner.serving.bounded import BoundedServer, ServerLimits
from tuner.serving.exchanges import Reply, Request
from tuner.web import api
from tuner.web.api import NotFound, Sources
from tuner.web.controls import ActionError, Actions
from tuner.web.metrics import CONTENT_TYPE, Metrics
from tuner.web.pages import Pages

log = structlog.get_logger(__name__)

_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
LIMITS = ServerLimits(connections=128, body_bytes=64_000, workers=8, concurrent=64)
"""The dashboard's bounds: an action's body is a small JSON object."""


Probe = Callable[[], tuple[bool, str]]
"""Answers a probe: whether it passes, and a line saying why."""


def _alive() -> tuple[bool, str]:
    return True, "ok"


def _daemon_ready(src: Sources) -> tuple[bool, str]:
    return src.state.ready(src.clock())


class WebServer:
    """Serves the dashboard, the API and the metrics on a background thread.

    Without ``src`` it serves only ``/healthz``, ``/readyz`` and ``/metrics``; ``alive``
    and ``ready`` replace the daemon's own answers to the two probes.
    """

    def __init__(
        self,
        src: Sources | None,
        metrics: Metrics,
        host: str = "127.0.0.1",
        port: int = 8780,
        *,
        actions: Actions | None = None,
        poll_ms: int = 3000,
        alive: Probe | None = None,
        ready: Probe | None = None,
    ):
        self.src = src
        self.metrics = metrics
        self.pages = (
            Pages(src, poll_ms, actions=actions is not None and actions.enabled) if src else None
        )
        self.actions = actions
        self.alive: Probe = alive or _alive
        if ready is None:
            if src is None:
                raise ValueError("a server without sources needs its own readiness probe")
            ready = functools.partial(_daemon_ready, src)
        self.ready: Probe = ready
        self.loopback_only = is_loopback(host)
        self.server = BoundedServer("tuner-web", _Dashboard(self), [(host, port)], LIMITS)

    @property
    def address(self) -> tuple[str, int]:
        """The host and port actually bound (port 0 picks a free one)."""
        return self.server.addresses[0]

    @property
    def url(self) -> str:
        """Where a person opens the dashboard."""
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def start(self) -> None:
        """Serve on a daemon thread."""
        self.server.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.close()


class _Dashboard:
    """Answers the dashboard's requests (the bounded server's handler)."""

    def __init__(self, web: WebServer) -> None:
        self.web = web

    def admit(self, request: Request) -> Reply | None:
        """Refuse, from the head alone: a foreign Host, an unknown method, an action without the token."""
        if not self._host_ok(request):
            return _reply(421, b"misdirected request\n", "text/plain", close=True)
        if request.method in ("GET", "HEAD"):
            return None
        if request.method != "POST":
            return _reply(405, b"method not allowed\n", "text/plain", close=True, Allow="GET, POST")
        actions = self.web.actions
        if actions is None or not actions.enabled:
            refusal = ActionError(HTTPStatus.FORBIDDEN, "read-only: no token is configured")
            return _json({"error": str(refusal)}, refusal.status, close=True)
        try:
            actions.authorise(request.headers)
        except ActionError as exc:
            return _json({"error": str(exc)}, exc.status, close=True)  # its body stays unread
        return None

    def _host_ok(self, request: Request) -> bool:
        if not self.web.loopback_only:
            return True
        host = (request.header("Host") or "").strip()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return is_loopback(name.strip("[]")) or name in LOOPBACK_NAMES

    def respond(self, request: Request, body: bytes) -> Reply:
        """The answer to a GET (a page, the API, metrics, probes) or to an action."""
        if request.method == "POST":
            return self._act(request, body)
        query = {k: v[-1] for k, v in parse_qs(request.query).items()}
        path = request.path
        try:
            return self._route(path, query)
        except NotFound as exc:
            if path.startswith("/api/"):
                return _json({"error": str(exc)}, 404)
            if self.web.pages is None:
                return _reply(404, f"{exc}\n".encode(), "text/plain; charset=utf-8")
            return _html(self.web.pages.error(404, str(exc)), 404)
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        except Exception as exc:  # noqa: BLE001 - one bad answer never stops the server
            log.exception("web request failed", path=path)
            return _json({"error": f"internal error: {type(exc).__name__}"}, 500)

    def _act(self, request: Request, body: bytes) -> Reply:
        actions = self.web.actions
        assert actions is not None  # admitted only with actions enabled
        try:
            result = actions.handle(request.path, request.headers, body, request.peer)
        except ActionError as exc:
            return _json({"error": str(exc)}, exc.status)
        return _json(result)

    def _route(self, path: str, q: dict[str, str]) -> Reply:
        web = self.web
        if path in ("/healthz", "/readyz"):
            passed, why = web.alive() if path == "/healthz" else web.ready()
            return _reply(
                200 if passed else 503, (why + "\n").encode(), "text/plain; charset=utf-8"
            )
        if path == "/metrics":
            return _reply(200, web.metrics.exposition(), CONTENT_TYPE)
        if web.src is None or web.pages is None:
            raise NotFound(f"nothing at {path}")
        return self._read(path, q, web.src, web.pages)

    def _read(self, path: str, q: dict[str, str], src: Sources, pages: Pages) -> Reply:
        if path == "/api/status":
            return _json(api.status_json(src))
        if path == "/api/fleet":
            return _json(
                src.fleet.query(
                    q.get("q", ""),
                    q.get("state", ""),
                    q.get("provider", ""),
                    _int(q, "page", 1),
                    _int(q, "per_page", 50),
                )
            )
        if path.startswith("/api/functions/"):
            return _json(api.function_json(src, path.removeprefix("/api/functions/")))
        if path == "/api/decisions":
            return _json(api.decisions_json(src, q.get("function"), _int(q, "limit", 100)))
        if path == "/api/rules":
            return _json(api.rules_json(src))
        if path == "/api/why":
            if not q.get("function"):
                raise ValueError("/api/why needs ?function=KEY (and optionally &rule=NAME)")
            return _json(api.why_json(src, q["function"], q.get("rule")))
        if path == "/api/topology":
            return _json(api.topology_json(src, q.get("function"), _int(q, "limit", 500)))
        if path == "/api/actions":
            return _json(self._actions_info())
        if path == "/":
            return _html(
                pages.fleet(
                    q.get("q", ""), q.get("state", ""), q.get("provider", ""), _int(q, "page", 1)
                )
            )
        if path.startswith("/functions/"):
            return _html(pages.function(path.removeprefix("/functions/")))
        if path == "/rules":
            return _html(pages.rules(q.get("function")))
        if path == "/topology":
            return _html(pages.topology(q.get("function")))
        if path.startswith("/static/"):
            return _static(path.removeprefix("/static/"))
        raise NotFound(f"nothing at {path}")

    def _actions_info(self) -> dict[str, Any]:
        actions = self.web.actions
        if actions is None or not actions.enabled:
            return {"enabled": False, "why": "read-only: no token is configured"}
        return {"enabled": True, "actions": list(actions.NAMES)}


def _static(name: str) -> Reply:
    if "/" in name or name.startswith("."):
        raise NotFound(name)
    try:
        body = resources.files("tuner.web").joinpath("static", name).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise NotFound(f"no asset {name}") from None
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind.endswith("javascript"):
        kind += "; charset=utf-8"
    return _reply(200, body, kind, cache="public, max-age=3600")


def _reply(
    status: int, body: bytes, content_type: str, *, close: bool = False, **headers: str
) -> Reply:
    """An answer with the headers every answer of the dashboard carries."""
    sent = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": headers.pop("cache", "no-store"),
    }
    if content_type.startswith("text/html"):
        sent["Content-Security-Policy"] = _CSP
    sent.update({name.replace("_", "-"): value for name, value in headers.items()})
    return Reply(status, body, content_type, sent, close)


def _json(value: Any, status: int = 200, *, close: bool = False) -> Reply:
    return _reply(status, api.dumps(value), "application/json", close=close)


def _html(text: str, status: int = 200) -> Reply:
    return _reply(status, text.encode(), "text/html; charset=utf-8")


def _int(q: dict[str, str], name: str, default: int) -> int:
    try:
        return int(q.get(name, default))
    except ValueError:
        raise ValueError(f"{name} must be a whole number") from None
