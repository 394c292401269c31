"""A bounded HTTP server on a thread of its own: uvicorn with caps a client cannot get around.

uvicorn serves (h11 parses, so a malformed request line, header or ``Content-Length``
gets 400 before the handler hears of it), and :class:`~tuner.serving.guarding.GuardedProtocol`
caps the connections and gives every request a deadline.  On top of that this server:

- asks the handler to :meth:`~tuner.serving.exchanges.Handler.admit` a request from its
  head alone, before a byte of the body is read (a refusal closes the connection unread);
- reads a body only up to ``body_bytes``, refusing a larger ``Content-Length`` unread (413);
- answers at most ``concurrent`` requests at once (503 beyond), on ``workers`` threads;
- notices a caller that goes away before its answer and says so in one log line.

The caps leave most of the process's open files to the rest of the daemon: a server
never holds more than a sixteenth of them (:func:`connection_cap`), plus at most
``backlog`` connections it has just accepted and is cutting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import resource
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog
import uvicorn

from tuner.serving.exchanges import BodyError, Handler, HeaderMap, Reply, Request, body_length
from tuner.serving.guarding import CapNotice, GuardedProtocol

log = structlog.get_logger(__name__)

FILE_SHARE = 16
"""A server holds at most 1/FILE_SHARE of the process's open-file limit in connections."""
_STARTUP_S = 5.0


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one server accepts: connections, time, sizes and concurrency."""

    connections: int = 128
    """Connections held at once (at most a sixteenth of the open-file limit)."""
    backlog: int = 16
    """Connections the kernel queues, and the most accepted at once (each then cut or kept)."""
    request_s: float = 10.0
    """A request's headers and body must arrive within this long of its first byte."""
    idle_s: float = 5.0
    """A connection with no request under way is closed after this long."""
    body_bytes: int = 64 * 1024
    """The largest body read; a larger ``Content-Length`` is refused unread (413)."""
    header_bytes: int = 16 * 1024
    """The largest request line plus headers (h11's incomplete-event limit)."""
    workers: int = 8
    """Threads that compute answers."""
    concurrent: int = 64
    """Requests admitted at once, answering or waiting for a thread; more get 503."""


def connection_cap(wanted: int) -> int:
    """``wanted``, but no more than a sixteenth of this process's open-file limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft // FILE_SHARE))


def json_reply(status: int, value: Any, **options: Any) -> Reply:
    """A JSON answer."""
    return Reply(status, json.dumps(value).encode(), "application/json", **options)


class BoundedServer:
    """Serves one handler on one or more addresses until closed.

    The sockets are bound at once (an address in use raises OSError here, before
    anything starts); :meth:`start` serves them on a thread of its own.
    """

    def __init__(
        self,
        name: str,
        handler: Handler,
        addresses: Sequence[tuple[str, int]],
        limits: ServerLimits | None = None,
    ) -> None:
        self.name = name
        self.handler = handler
        self.limits = limits or ServerLimits()
        _quiet_uvicorn()
        self._sockets: list[socket.socket] = []
        try:
            for host, port in addresses:
                self._sockets.append(_listen(host, port, self.limits.backlog))
        except OSError:
            self._close_sockets()
            raise
        self.notice = CapNotice(name, connection_cap(self.limits.connections))
        protocol = type(
            "GuardedProtocol",
            (GuardedProtocol,),
            {"cap": self.notice.cap, "request_s": self.limits.request_s, "notice": self.notice},
        )
        config = uvicorn.Config(
            self._app,
            http=protocol,
            interface="asgi3",
            proxy_headers=False,  # the peer is who connected, never what a header claims
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_keep_alive=max(1, math.ceil(self.limits.idle_s)),
            timeout_graceful_shutdown=2,
            h11_max_incomplete_event_size=self.limits.header_bytes,
            backlog=self.limits.backlog,  # asyncio accepts up to this many per wakeup
        )
        self._server = uvicorn.Server(config)
        self._pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix=name)
        self._in_flight = 0
        self._thread: threading.Thread | None = None

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (host, port) actually bound, in the order given (port 0 picks a free one)."""
        return [(str(s.getsockname()[0]), int(s.getsockname()[1])) for s in self._sockets]

    def start(self) -> None:
        """Serve on a daemon thread; returns once the server listens."""
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _STARTUP_S
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {self.name} server did not start")
            time.sleep(0.005)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=self._sockets))

    def close(self) -> None:
        """Stop serving, drop the connections and free the ports."""
        if self._thread is not None and self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(timeout=5)
        self._close_sockets()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()

    # ------------------------------------------------------------ one request

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI application uvicorn calls for each request."""
        if scope["type"] != "http":
            return
        request = _request(scope)
        reply = self._admit(request)
        if reply is not None and reply.close:
            await _discard_small_body(request, receive)
        if reply is None:
            reply = await self._admitted(request, receive)
            if reply is None:
                return  # the caller left
        try:
            await _send(send, reply, head=request.method == "HEAD")
        except Exception as error:  # noqa: BLE001 - uvicorn already answered a broken request
            log.debug("answer not sent", server=self.name, reason=type(error).__name__)

    def _admit(self, request: Request) -> Reply | None:
        """The handler's refusal, 503 when the server is full, or None (a slot is taken)."""
        try:
            reply = self.handler.admit(request)
        except Exception:  # noqa: BLE001 - one bad request never stops the server
            log.exception("request refused by an error", server=self.name, path=request.path)
            return json_reply(500, {"error": "internal error"}, close=True)
        if reply is not None:
            return reply
        if self._in_flight >= self.limits.concurrent:
            return json_reply(
                503,
                {"error": "too many requests at once"},
                headers={"Retry-After": "1"},
                close=True,
            )
        self._in_flight += 1
        return None

    async def _body(self, request: Request, receive: Any) -> bytes | None:
        """The body, read only up to the cap; None when the caller left."""
        length = body_length(
            request.header("content-length"),
            request.header("transfer-encoding"),
            self.limits.body_bytes,
            required=False,
        )
        chunks, size, more = [], 0, length > 0
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False) and size < length
        return b"".join(chunks)

    async def _admitted(self, request: Request, receive: Any) -> Reply | None:
        """Read the body and compute the answer on a worker thread; None when the caller left.

        The request's slot is given back once its thread is done, even when the caller
        left before: a thread still at work counts.
        """
        handed_over = False
        try:
            body = await self._body(request, receive)
            if body is None:
                return None
            work = asyncio.get_running_loop().run_in_executor(
                self._pool, self._respond, request, body
            )
            work.add_done_callback(self._release)
            handed_over = True
        except BodyError as refused:
            return json_reply(refused.status, {"error": str(refused)}, close=True)
        finally:
            if not handed_over:
                self._in_flight -= 1
        gone = asyncio.ensure_future(_disconnected(receive))
        racing: set[asyncio.Future[Any]] = {work, gone}
        await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            gone.cancel()
            return work.result()
        log.info(
            "the caller went away before its answer",
            server=self.name,
            method=request.method,
            path=request.path[:200],
        )
        return None

    def _release(self, _: object) -> None:
        self._in_flight -= 1

    def _respond(self, request: Request, body: bytes) -> Reply:
        try:
            return self.handler.respond(request, body)
        except Exception:  # noqa: BLE001 - one bad answer never stops the server
            log.exception("request failed", server=self.name, path=request.path)
            return json_reply(500, {"error": "internal error"})


def _request(scope: Any) -> Request:
    headers = HeaderMap([(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]])
    client = scope.get("client") or ("", 0)
    server = scope.get("server") or ("", 0)
    return Request(
        method=scope["method"],
        path=scope["path"],
        query=scope["query_string"].decode("latin-1"),
        headers=headers,
        peer=str(client[0]),
        port=int(server[1] or 0),
    )


_DISCARD_BYTES = 64 * 1024
_DISCARD_S = 1.0


async def _discard_small_body(request: Request, receive: Any) -> None:
    """Take in a small body that is refused, so the answer is read rather than reset.

    A server that closes a connection with unread data makes the kernel reset it, and
    the client may lose the answer (401, 404, 429) to the reset.  Only a body declared
    at most 64 KiB is taken in, for at most a second, and thrown away unread.
    """
    declared = (request.header("content-length") or "").strip()
    if not declared.isdigit() or not 0 < int(declared) <= _DISCARD_BYTES:
        return
    left = int(declared)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_DISCARD_S):
            while left > 0:
                message = await receive()
                if message["type"] == "http.disconnect" or not message.get("more_body", False):
                    return
                left -= len(message.get("body", b""))


async def _disconnected(receive: Any) -> None:
    """Returns once the caller has closed its connection."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send(send: Any, reply: Reply, *, head: bool) -> None:
    headers = [
        (b"Content-Type", reply.content_type.encode("latin-1")),
        (b"Content-Length", str(len(reply.body)).encode()),
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()),
    ]
    if reply.close:
        headers.append((b"Connection", b"close"))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else reply.body})


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def _quiet_uvicorn() -> None:
    """uvicorn's own log lines (a bad request, start and stop) stay out of the daemon's log.

    Whatever matters is logged by this package through structlog.
    """
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.propagate = False
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())
