"""The invoke endpoint against callers without the token, oversized bodies and floods."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_world import WallClock

from tests.serving.connections import half_open, held_by_server
from tuner.providers.local.access import RateLimiter, authorized, load_or_create_token
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.http_api import EndpointLimits
from tuner.providers.local.provider import LocalProvider
from tuner.providers.local.sandboxing import private_folder
from tuner.serving.exchanges import BodyError, body_length

BODY_CAP = 64 * 1024


@pytest.fixture
def guarded(functions_dir: Path, state_dir: Path) -> Iterator[LocalProvider]:
    """A provider whose endpoint has a small body cap and a slow rate limit."""
    secret_dir = functions_dir / "functions" / "echo"
    (secret_dir / "function.yaml").write_text(
        "memory_mb: 128\ntimeout_s: 5\nenvironment: {DB_PASSWORD: hunter2, REGION: eu}\n"
    )
    host = FunctionHost(functions_dir, state_dir, WallClock(), max_workers_per_function=2)
    limits = EndpointLimits(body_bytes=BODY_CAP, invoke_rate_per_s=0.5, invoke_burst=3)
    running = LocalProvider(host, WallClock(), http_port=0, traffic=False, endpoint_limits=limits)
    running.start()
    yield running
    running.close()


def raw(provider: LocalProvider, head: str, body: bytes = b"", *, token: bool = True) -> str:
    """Send a hand-made request; return the response's status line and body."""
    assert provider.url is not None
    host, port = provider.url.removeprefix("http://").split(":")
    auth = f"Authorization: Bearer {provider.token}\r\n" if token else ""
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(f"{head}\r\nHost: x\r\n{auth}\r\n".encode())
        with contextlib.suppress(OSError):  # the server may answer and close unread
            connection.sendall(body)
        response = b""
        while chunk := connection.recv(65536):
            response += chunk
    status_line = response.split(b"\r\n", 1)[0].decode()
    return status_line + " " + response.split(b"\r\n\r\n", 1)[-1].decode()


def post(path: str, body: bytes) -> str:
    return f"POST {path} HTTP/1.1\r\nContent-Length: {len(body)}\r\nConnection: close"


def test_requests_without_the_token_change_nothing(guarded: LocalProvider) -> None:
    event = json.dumps({"n": 1}).encode()
    records = json.dumps([{"id": i} for i in range(20)]).encode()

    assert " 401 " in raw(guarded, post("/functions/echo/invoke", event), event, token=False)
    assert " 401 " in raw(
        guarded, post("/functions/batcher/records", records), records, token=False
    )
    assert " 401 " in raw(guarded, "GET /functions HTTP/1.1\r\nConnection: close", token=False)
    time.sleep(0.5)  # longer than the batcher's window
    assert guarded.host.records.invocations(["echo", "batcher"], 0, time.time() + 1) == []
    assert guarded.host.queued("batcher") == 0


def test_a_wrong_token_is_refused(guarded: LocalProvider) -> None:
    assert guarded.token is not None
    assert not authorized("Bearer " + guarded.token[:-1] + "x", guarded.token)
    assert not authorized(guarded.token, guarded.token)  # the scheme is required
    assert authorized("bearer " + guarded.token, guarded.token)


def test_environment_values_are_never_listed(guarded: LocalProvider) -> None:
    answer = raw(guarded, "GET /functions HTTP/1.1\r\nConnection: close")

    assert " 200 " in answer and "hunter2" not in answer
    listing = json.loads(answer.split(" ", 3)[3])
    [echo] = [f for f in listing["functions"] if f["name"] == "echo"]
    assert echo["config"]["environment"] == ["DB_PASSWORD", "REGION"]


@pytest.mark.parametrize(
    ("length_header", "status"),
    [
        ("Content-Length: -1", 400),
        ("Content-Length: 999999999999", 413),
        (f"Content-Length: {BODY_CAP + 1}", 413),
        ("Content-Length: 1e3", 400),
        ("Transfer-Encoding: chunked", 411),
        ("", 411),
    ],
)
def test_the_body_cap_holds_whatever_content_length_says(
    guarded: LocalProvider, length_header: str, status: int
) -> None:
    head = "POST /functions/echo/invoke HTTP/1.1\r\nConnection: close"
    head += f"\r\n{length_header}" if length_header else ""
    body = b"x" * (8 * 1024 * 1024)  # far past the cap, never read
    if "chunked" in length_header:
        body = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    answer = raw(guarded, head, body)

    assert answer.startswith(f"HTTP/1.0 {status}") or answer.startswith(f"HTTP/1.1 {status}")
    assert guarded.host.records.invocations(["echo"], 0, time.time() + 1) == []


def test_trickling_connections_are_capped_and_cut_before_their_headers_are_complete(
    guarded: LocalProvider,
) -> None:
    assert guarded.url is not None
    port = int(guarded.url.rsplit(":", 1)[1])
    limits = EndpointLimits()
    head = b"POST /functions/echo/invoke HTTP/1.1\r\nHost: x\r\n"  # and never the end
    with half_open(port, limits.connections + 20, head) as clients:
        time.sleep(0.3)
        assert held_by_server(port) <= limits.connections
        until = time.monotonic() + limits.request_s + 3
        while time.monotonic() < until:  # a header byte a second: never idle for long
            for client in clients:
                with contextlib.suppress(OSError):
                    client.send(b"X")
            time.sleep(1)
        assert held_by_server(port) == 0
    assert " 200 " in raw(guarded, post("/functions/echo/invoke", b"{}"), b"{}")


def test_invocations_are_rate_limited_per_function(guarded: LocalProvider) -> None:
    body = b"{}"
    answers = [raw(guarded, post("/functions/echo/invoke", body), body) for _ in range(4)]

    assert [a.split(" ")[1] for a in answers] == ["200", "200", "200", "429"]
    assert " 200 " in raw(guarded, post("/functions/failing/invoke", body), body)


def test_body_length_rules() -> None:
    assert body_length("12", None, 100, required=True) == 12
    assert body_length("0", None, 100, required=True) == 0
    assert body_length(None, None, 100, required=False) == 0
    for header, encoding, status in [
        (None, None, 411),
        ("-1", None, 400),
        ("+5", None, 400),
        ("101", None, 413),
        ("5", "chunked", 411),
    ]:
        with pytest.raises(BodyError) as refused:
            body_length(header, encoding, 100, required=True)
        assert refused.value.status == status


def test_the_rate_limiter_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate_per_s=2.0, burst=2, now=lambda: now[0])

    assert [limiter.allow("f") for _ in range(3)][:2] == [0.0, 0.0]
    assert limiter.allow("f") == pytest.approx(0.5)
    assert limiter.allow("g") == 0.0  # another function has its own bucket
    now[0] = 0.5
    assert limiter.allow("f") == 0.0


def test_the_token_file_is_private_and_an_exposed_one_is_replaced(tmp_path: Path) -> None:
    token, path = load_or_create_token(tmp_path / "state")

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(tmp_path / "state")[0] == token
    os.chmod(path, 0o644)
    replaced, _ = load_or_create_token(tmp_path / "state")
    assert replaced != token and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_state_folder_is_private(guarded: LocalProvider) -> None:
    assert stat.S_IMODE(guarded.host.state_dir.stat().st_mode) == 0o700
    assert (
        guarded.start_notes()
        and str(guarded.host.state_dir / "local-token") in (guarded.start_notes()[0])
    )


def test_a_state_folder_holding_only_tuners_files_is_narrowed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "tuner.db").write_text("")
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    (shared / "notes.txt").write_text("")

    private_folder(state)
    private_folder(shared)

    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # not tuner's alone: only warned
