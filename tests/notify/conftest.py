"""Fixtures for the notification tests: decisions, a clock, and real local servers."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.fakes import FakeClock
from tuner.daemon.config import bundled_rules
from tuner.decisions.planning import resolved_decision
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.model import Change, FunctionRef, Knob, Mode, Severity
from tuner.engine import load_rules

T0 = 1_800_000_000.0


class WallClock:
    """The real time, for tests that measure real waiting (rate limits, Retry-After)."""

    def now(self) -> float:
        return time.time()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


_counter = iter(range(1, 10**9))


def decision(
    name: str = "resize",
    rule: str = "oom",
    *,
    action: str = "more-memory",
    state: State = State.APPLIED,
    severity: Severity = Severity.CRITICAL,
    mode: Mode = Mode.APPLY,
    change: Change | None = None,
    group: str = "",
    channels: tuple[str, ...] = (),
    time_: float = T0,
    summary: str = "",
    advice: str = "",
    reason: str = "",
    **facts: Any,
) -> Decision:
    """A decision about the function ``aws:eu-west-1/<name>``; facts as keyword arguments."""
    if change is None and state in (State.APPLIED, State.RECOMMENDED, State.ROLLED_BACK):
        change = Change(Knob.MEMORY_MB, 128, 384)
    return Decision(
        id=f"d{next(_counter)}",
        time=time_,
        ref=FunctionRef("aws", name, "eu-west-1"),
        rule=rule,
        action=action,
        severity=severity,
        mode=mode,
        state=state,
        facts=facts,
        change=change,
        summary=summary or f"{rule} on {name}",
        advice=advice,
        reason=reason,
        channels=channels,
        group=group,
    )


def resolved(name: str = "resize", rule: str = "oom") -> Decision:
    """The core's mark that ``rule`` stopped firing for the function."""
    return resolved_decision(
        load_rules([bundled_rules()]).by_name(rule),
        FunctionRef("aws", name, "eu-west-1"),
        {},
        Mode.APPLY,
        T0,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Request:
    """One request the HTTP receiver got."""

    at: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class HttpReceiver:
    """A local HTTP server that records POSTs and answers from a script of statuses."""

    url: str
    requests: list[Request] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    """Answers for the next requests, in order; then 200."""
    delay: float = 0.0
    """Seconds to wait before answering (a slow receiver)."""
    hold: threading.Event | None = None
    """When given, answers only once it is set (a receiver that hangs), at most 10 s."""


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            with lock:
                receiver.requests.append(
                    Request(time.monotonic(), self.path, dict(self.headers.items()), body)
                )
                status, headers = receiver.script.pop(0) if receiver.script else (200, {})
            if receiver.delay:
                time.sleep(receiver.delay)
            if receiver.hold is not None:
                receiver.hold.wait(10)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            reply = b"ok" if status == 200 else b"error"
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up waiting (timeout tests)
                self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/s3cr3t-t0ken"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class MailHandler:
    """Collects the messages an aiosmtpd server receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


@dataclass
class MailServer:
    """A running SMTP server on 127.0.0.1."""

    port: int
    handler: MailHandler
    controller: Controller


@pytest.fixture
def start_smtp() -> Iterator[Callable[..., MailServer]]:
    """Starts aiosmtpd servers (on a given or free port); all are stopped afterwards."""
    started: list[Controller] = []

    def start(port: int | None = None, **kwargs: Any) -> MailServer:
        handler = MailHandler()
        controller = Controller(handler, hostname="127.0.0.1", port=port or free_port(), **kwargs)
        controller.start()
        started.append(controller)
        return MailServer(controller.port, handler, controller)

    yield start
    for controller in started:
        controller.stop()


@dataclass
class Certificate:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""

    cert: Path
    key: Path


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    paths = Certificate(folder / "cert.pem", folder / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def server_tls(certificate: Certificate) -> ssl.SSLContext:
    """The server side TLS context for the test certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)
    return context


def mail_settings(port: int, **mail: Any) -> dict[str, Any]:
    """Settings with one email channel to 127.0.0.1:``port`` (plain SMTP unless overridden)."""
    return {
        "channels": {
            "mail": {
                "type": "email",
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "from": "tuner@example.com",
                "to": ["team@example.com", "oncall@example.com"],
                **mail,
            },
        },
        "routing": {"default_channels": ["mail"]},
        "delivery": {"retry_initial": "10s", "retry_max": "1m", "give_up_after": "1h"},
    }


def hook_settings(url_env: str, **routing: Any) -> dict[str, Any]:
    """Settings with one webhook channel whose URL is in the variable ``url_env``."""
    return {
        "channels": {"hook": {"type": "webhook", "url_env": url_env, "timeout": "1s"}},
        "routing": {"default_channels": ["hook"], **routing},
    }
