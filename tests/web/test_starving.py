"""The dashboard against clients that would starve it: bad lengths, huge bodies, half-open connections."""

from __future__ import annotations

import time

import pytest

from tests.serving.connections import answer_to, half_open, held_by_server, stream_body
from tests.web.conftest import World
from tuner.web.server import LIMITS

ACTION = b"POST /api/actions/pause HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def port_of(world: World) -> int:
    return world.insight.server.address[1] if world.insight.server else 0


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3"])
def test_a_bad_content_length_gets_400(world: World, length: bytes) -> None:
    answer, sent = stream_body(
        port_of(world), ACTION + b"Content-Length: " + length + b"\r\n\r\n", 64 << 20
    )

    assert answer.startswith(b"HTTP/1.1 400 ")
    assert sent < 64 << 20  # refused before the stream was read


def test_an_action_without_the_token_is_refused_before_its_body_is_read(world: World) -> None:
    answer = answer_to(port_of(world), ACTION + b"Content-Length: 60000\r\n\r\n")  # no body sent

    assert answer.startswith(b"HTTP/1.1 401 ")


def test_a_600_mb_body_without_the_token_is_never_read(world: World) -> None:
    head = ACTION + b"Content-Length: 629145600\r\n\r\n"
    answer, sent = stream_body(port_of(world), head, 600 << 20)

    assert answer.startswith((b"HTTP/1.1 401 ", b"HTTP/1.1 413 "))
    assert sent < 64 << 20


def test_half_open_connections_are_capped(world: World) -> None:
    port = port_of(world)
    with half_open(port, LIMITS.connections + 200):
        time.sleep(0.3)
        assert held_by_server(port) <= LIMITS.connections
    healthz = answer_to(
        port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    assert healthz.startswith(b"HTTP/1.1 200 ")
