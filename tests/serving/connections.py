"""Clients that attack an HTTP server on 127.0.0.1, and what the server holds meanwhile."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psutil


def held_by_server(port: int) -> int:
    """Connections this process holds on the server's side of ``port``."""
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


@contextlib.contextmanager
def half_open(
    port: int, count: int, head: bytes = b"GET / HTTP/1.1\r\nHost: x\r\n"
) -> Iterator[list[socket.socket]]:
    """``count`` connections that each sent a request's beginning and then nothing.

    They are opened 64 at a time, as many clients would: one past the server's backlog
    waits for the kernel to retry its handshake (a second or more), and one at a time
    those waits add up to most of a minute.
    """
    opened: list[socket.socket] = []

    def connect(_: int) -> None:
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        opened.append(client)
        with contextlib.suppress(OSError):  # cut at once when the server is full
            client.sendall(head)

    try:
        with ThreadPoolExecutor(max_workers=64) as pool:
            list(pool.map(connect, range(count)))
        yield opened
    finally:
        for client in opened:
            client.close()


def closed_by_server(client: socket.socket, within_s: float) -> bool:
    """True when the server closes (or resets) the connection within the time."""
    client.settimeout(0.2)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if client.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def answer_to(port: int, request: bytes, timeout_s: float = 5.0) -> bytes:
    """The whole answer to one raw request (which should ask for ``Connection: close``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as client:
        client.sendall(request)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := client.recv(65536):
                answer += chunk
    return answer


def stream_body(port: int, head: bytes, total: int) -> tuple[bytes, int]:
    """Send ``head`` and then up to ``total`` body bytes; the answer and how many were sent."""
    block = b"x" * (1 << 20)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(head)
        with contextlib.suppress(OSError):  # the server answers and closes unread
            while sent < total:
                client.sendall(block)
                sent += len(block)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := client.recv(65536):
                answer += chunk
    return answer, sent
