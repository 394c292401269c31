"""uvicorn's HTTP/1.1 protocol (h11) with a cap on connections and a deadline per request.

uvicorn times out a connection only while it is idle between requests, and that timer
stops at the first byte of the next request: a client that trickles its headers one
byte at a time, or sends headers and no body, would hold its connection for ever.
Here a request must arrive whole, headers and body, within ``request_s`` of its first
byte (or of the connection, for the first request); otherwise the connection is cut.
A connection beyond ``cap`` is cut as soon as it is accepted, so the server never
holds more than ``cap`` descriptors whatever the clients do.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

import h11
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

log = structlog.get_logger(__name__)

_RECEIVING = (h11.IDLE, h11.SEND_BODY)
"""The client's states while its request has not fully arrived."""


class CapNotice:
    """Says, at most once every ``every_s``, that a server cut connections at its cap."""

    def __init__(self, server: str, cap: int, every_s: float = 60.0) -> None:
        self.server = server
        self.cap = cap
        self.every_s = every_s
        self.refused = 0
        """Connections cut at the cap since the server started."""
        self._said = 0
        self._next = 0.0

    def cut(self) -> None:
        """Count one connection cut at the cap; log the count now and then."""
        self.refused += 1
        now = time.monotonic()
        if now >= self._next:
            log.warning(
                "connections cut at the server's cap",
                server=self.server,
                cap=self.cap,
                cut=self.refused - self._said,
            )
            self._said = self.refused
            self._next = now + self.every_s


class GuardedProtocol(H11Protocol):
    """One connection of a bounded server; its class attributes are set per server."""

    cap: ClassVar[int] = 128
    """Connections held open at once; more are cut on arrival."""
    request_s: ClassVar[float] = 10.0
    """Time for a request (headers and body) to arrive once it has begun."""
    notice: ClassVar[CapNotice | None] = None

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Take the connection, or cut it at once when the server holds its cap."""
        super().connection_made(transport)
        if len(self.connections) > self.cap:
            if self.notice is not None:
                self.notice.cut()
            transport.abort()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Feed the parser; the deadline runs while a request is arriving."""
        if self.conn.their_state is h11.IDLE:
            self._arm()
        super().data_received(data)
        if self.conn.their_state not in _RECEIVING:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadline with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.request_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.conn.their_state in _RECEIVING and not self.transport.is_closing():
            log.debug("request not complete in time: connection cut", client=self.client)
            self.transport.abort()
