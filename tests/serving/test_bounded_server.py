"""The bounded server against clients that would hold it: half-open, trickling, leaving early."""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.serving.connections import answer_to, closed_by_server, half_open, held_by_server
from tuner.serving.bounded import BoundedServer, ServerLimits, connection_cap, json_reply
from tuner.serving.exchanges import Reply, Request

CAP = 16


class Echo:
    """Answers with the body's length; ``/slow`` takes a while."""

    def __init__(self) -> None:
        self.answered: list[str] = []
        self.release = threading.Event()

    def admit(self, request: Request) -> Reply | None:
        if request.header("Authorization") != "Bearer ok" and request.method == "POST":
            return json_reply(401, {"error": "no token"}, close=True)
        return None

    def respond(self, request: Request, body: bytes) -> Reply:
        if request.path == "/slow":
            self.release.wait(5)
        self.answered.append(request.path)
        return json_reply(200, {"length": len(body)})


@pytest.fixture
def echo() -> Echo:
    return Echo()


@pytest.fixture
def server(echo: Echo) -> Iterator[BoundedServer]:
    running = BoundedServer(
        "test",
        echo,
        [("127.0.0.1", 0)],
        ServerLimits(connections=CAP, request_s=1.0, body_bytes=1024),
    )
    running.start()
    yield running
    running.close()


def port_of(server: BoundedServer) -> int:
    return server.addresses[0][1]


def test_connections_beyond_the_cap_are_cut_on_arrival(echo: Echo) -> None:
    server = BoundedServer("held", echo, [("127.0.0.1", 0)], ServerLimits(connections=CAP))
    server.start()
    try:
        port = port_of(server)
        with half_open(port, CAP * 4):
            deadline = time.monotonic() + 10
            while server.notice.refused < CAP * 3 and time.monotonic() < deadline:
                assert held_by_server(port) <= CAP
                time.sleep(0.05)
            assert held_by_server(port) == CAP
        assert server.notice.refused == CAP * 3
    finally:
        server.close()


def test_a_request_that_does_not_arrive_in_time_loses_its_connection(
    server: BoundedServer,
) -> None:
    port = port_of(server)
    with half_open(port, CAP) as clients:
        assert all(closed_by_server(c, within_s=3.0) for c in clients)
        assert held_by_server(port) == 0
    assert b"200 OK" in answer_to(
        port, b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )


def test_trickling_headers_do_not_extend_the_deadline(server: BoundedServer) -> None:
    client = socket.create_connection(("127.0.0.1", port_of(server)))
    started = time.monotonic()
    client.sendall(b"GET / HTTP/1.1\r\n")
    try:
        while time.monotonic() - started < 6:  # one byte every 0.2 s, for as long as it may
            client.sendall(b"X")
            time.sleep(0.2)
    except OSError:
        pass
    finally:
        client.close()
    assert time.monotonic() - started < 4  # cut near its 1 s deadline, not when it stopped


def test_a_connection_that_sends_nothing_is_closed(server: BoundedServer) -> None:
    with socket.create_connection(("127.0.0.1", port_of(server))) as client:
        assert closed_by_server(client, within_s=3.0)


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3", b"5, 6"])
def test_a_bad_content_length_gets_400(server: BoundedServer, length: bytes) -> None:
    request = b"POST /x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ok\r\nContent-Length: "
    answer = answer_to(port_of(server), request + length + b"\r\n\r\nhello")

    assert answer.startswith(b"HTTP/1.1 400 ")


def test_a_body_over_the_cap_is_refused_unread(server: BoundedServer, echo: Echo) -> None:
    request = (
        b"POST /x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ok\r\nContent-Length: 2048\r\n\r\n"
    )
    answer = answer_to(port_of(server), request + b"x" * 2048)

    assert answer.startswith(b"HTTP/1.1 413 ") and echo.answered == []


def test_an_admitted_body_reaches_the_handler_whole(server: BoundedServer) -> None:
    body = b"y" * 1000
    head = f"POST /x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ok\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    answer = answer_to(port_of(server), head.encode() + body)

    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"length": 1000}')


def test_requests_beyond_the_concurrency_get_503(echo: Echo) -> None:
    server = BoundedServer("busy", echo, [("127.0.0.1", 0)], ServerLimits(workers=1, concurrent=1))
    server.start()
    try:
        port = port_of(server)
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        answer = answer_to(port, b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        echo.release.set()
        assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer
        assert slow.recv(4096).startswith(b"HTTP/1.1 200 ")
        slow.close()
    finally:
        server.close()


def test_a_caller_that_leaves_early_costs_one_log_line(
    server: BoundedServer, echo: Echo, capfd: pytest.CaptureFixture[str]
) -> None:
    client = socket.create_connection(("127.0.0.1", port_of(server)))
    client.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    client.close()  # a reset, as when the caller's process is killed
    time.sleep(0.3)
    echo.release.set()
    time.sleep(0.2)

    out, err = capfd.readouterr()
    assert (out + err).count("the caller went away before its answer") == 1
    assert "Traceback" not in out + err


def test_the_cap_leaves_most_open_files_to_the_rest_of_the_process() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        assert connection_cap(10_000) == 64
        assert connection_cap(32) == 32
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_an_address_in_use_is_refused_before_anything_starts(server: BoundedServer) -> None:
    with pytest.raises(OSError):
        BoundedServer("second", Echo(), [("127.0.0.1", port_of(server))])
