"""The daemon's one HTTP server: health, readiness, metrics, the JSON API and the dashboard.

The standard library's ``ThreadingHTTPServer`` is enough here and adds no dependency: every
answer is a read of in-memory state or one indexed query, built in milliseconds, and each
request gets its own thread, so a slow client never holds up a scrape.  It listens on
127.0.0.1 unless told otherwise, and then answers only requests addressed to a loopback name
(a page on another site cannot reach it through DNS rebinding).
"""

from __future__ import annotations

import functools
import mimetypes
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import structlog

from tuner.daemon.addresses import LOOPBACK_NAMES, is_loopback
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
        handler = type("Handler", (_Handler,), {"web": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.loopback_only = is_loopback(host)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The host and port actually bound (port 0 picks a free one)."""
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """Where a person opens the dashboard."""
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def start(self) -> None:
        """Serve on a daemon thread."""
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="tuner-web", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    web: WebServer
    server_version = "tuner"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """No access log: scrapes and polls every few seconds would drown the daemon's log."""

    # ------------------------------------------------------------ answering

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", headers.pop("cache", "no-store"))
        if content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", _CSP)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, value: Any, status: int = 200) -> None:
        self._send(status, api.dumps(value), "application/json")

    def _html(self, text: str, status: int = 200) -> None:
        self._send(status, text.encode(), "text/html; charset=utf-8")

    def _host_ok(self) -> bool:
        if not self.web.loopback_only:
            return True
        host = (self.headers.get("Host") or "").strip()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return is_loopback(name.strip("[]")) or name in LOOPBACK_NAMES

    def do_HEAD(self) -> None:  # noqa: N802 - the base's naming
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - the base's naming
        if not self._host_ok():
            self._send(421, b"misdirected request\n", "text/plain")
            return
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        wants_json = path.startswith("/api/")
        try:
            self._route(path, query)
        except NotFound as exc:
            if wants_json:
                self._json({"error": str(exc)}, 404)
            elif self.web.pages is None:
                self._send(404, f"{exc}\n".encode(), "text/plain; charset=utf-8")
            else:
                self._html(self.web.pages.error(404, str(exc)), 404)
        except ValueError as exc:
            self._json({"error": str(exc)}, 400)
        except Exception as exc:  # noqa: BLE001 - one bad answer never stops the server
            log.exception("web request failed", path=path)
            self._json({"error": f"internal error: {type(exc).__name__}"}, 500)

    def _route(self, path: str, q: dict[str, str]) -> None:
        web = self.web
        if path in ("/healthz", "/readyz"):
            passed, why = web.alive() if path == "/healthz" else web.ready()
            self._send(200 if passed else 503, (why + "\n").encode(), "text/plain; charset=utf-8")
        elif path == "/metrics":
            self._send(200, web.metrics.exposition(), CONTENT_TYPE)
        elif web.src is None or web.pages is None:
            raise NotFound(f"nothing at {path}")
        else:
            self._read(path, q, web.src, web.pages)

    def _read(self, path: str, q: dict[str, str], src: Sources, pages: Pages) -> None:
        if path == "/api/status":
            self._json(api.status_json(src))
        elif path == "/api/fleet":
            self._json(
                src.fleet.query(
                    q.get("q", ""),
                    q.get("state", ""),
                    q.get("provider", ""),
                    _int(q, "page", 1),
                    _int(q, "per_page", 50),
                )
            )
        elif path.startswith("/api/functions/"):
            self._json(api.function_json(src, path.removeprefix("/api/functions/")))
        elif path == "/api/decisions":
            self._json(api.decisions_json(src, q.get("function"), _int(q, "limit", 100)))
        elif path == "/api/rules":
            self._json(api.rules_json(src))
        elif path == "/api/why":
            if not q.get("function"):
                raise ValueError("/api/why needs ?function=KEY (and optionally &rule=NAME)")
            self._json(api.why_json(src, q["function"], q.get("rule")))
        elif path == "/api/topology":
            self._json(api.topology_json(src, q.get("function"), _int(q, "limit", 500)))
        elif path == "/api/actions":
            self._json(self._actions_info())
        elif path == "/":
            self._html(
                pages.fleet(
                    q.get("q", ""), q.get("state", ""), q.get("provider", ""), _int(q, "page", 1)
                )
            )
        elif path.startswith("/functions/"):
            self._html(pages.function(path.removeprefix("/functions/")))
        elif path == "/rules":
            self._html(pages.rules(q.get("function")))
        elif path == "/topology":
            self._html(pages.topology(q.get("function")))
        elif path.startswith("/static/"):
            self._static(path.removeprefix("/static/"))
        else:
            raise NotFound(f"nothing at {path}")

    def _static(self, name: str) -> None:
        if "/" in name or name.startswith("."):
            raise NotFound(name)
        try:
            body = resources.files("tuner.web").joinpath("static", name).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"no asset {name}") from None
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind.endswith("javascript"):
            kind += "; charset=utf-8"
        self._send(200, body, kind, cache="public, max-age=3600")

    # ------------------------------------------------------------ actions

    def _actions_info(self) -> dict[str, Any]:
        actions = self.web.actions
        if actions is None or not actions.enabled:
            return {"enabled": False, "why": "read-only: no token is configured"}
        return {"enabled": True, "actions": list(actions.NAMES)}

    def do_POST(self) -> None:  # noqa: N802 - the base's naming
        if not self._host_ok():
            self._send(421, b"misdirected request\n", "text/plain")
            return
        actions = self.web.actions
        path = urlsplit(self.path).path
        if actions is None or not actions.enabled:
            self._json({"error": "read-only: no token is configured"}, HTTPStatus.FORBIDDEN)
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > 64_000:
            self._json({"error": "request too large"}, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return
        body = self.rfile.read(length)
        try:
            result = actions.handle(path, self.headers, body, _peer(self))
        except ActionError as exc:
            self._json({"error": str(exc)}, exc.status)
            return
        self._json(result)


def _peer(handler: BaseHTTPRequestHandler) -> str:
    return str(handler.client_address[0])


def _int(q: dict[str, str], name: str, default: int) -> int:
    try:
        return int(q.get(name, default))
    except ValueError:
        raise ValueError(f"{name} must be a whole number") from None
