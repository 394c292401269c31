"""Email over SMTP against aiosmtpd on 127.0.0.1: content, TLS, auth, outages."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.fakes import FakeClock
from tests.notify.conftest import (
    Certificate,
    MailServer,
    decision,
    free_port,
    mail_settings,
    server_tls,
)
from tuner.notify import NotificationCenter, build_notifier


def mail_center(tmp_path: Path, clock: FakeClock, port: int, **mail: Any) -> NotificationCenter:
    return build_notifier(mail_settings(port, **mail), tmp_path / "tuner.db", clock)


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_a_mail_with_text_and_html_parts(
    tmp_path: Path, clock: FakeClock, start_smtp: Callable[..., MailServer]
) -> None:
    server = start_smtp()
    with mail_center(tmp_path, clock, server.port) as center:
        center.notify(
            [
                decision(
                    summary="14 of 1200 invocations ran out of memory",
                    advice="Watch the next windows.",
                    peak_memory_mb=301.0,
                )
            ]
        )
        clock.advance(30)
        assert center.flush(0) == 0
        (row,) = center.outbox.rows()
    ((recipients, raw),) = server.handler.messages
    assert recipients == ["team@example.com", "oncall@example.com"]
    message = parse(raw)
    subject = "[tuner] [CRITICAL] aws:eu-west-1/resize: applied: memory_mb 128 -> 384 (oom)"
    assert message["Subject"] == subject  # no leading space: never folded after the colon
    assert f"Subject: {subject}".encode() in raw.split(b"\r\n")
    assert message["Message-ID"] == f"<{row.id}@tuner>"
    text, html = parts(message)
    assert "14 of 1200 invocations ran out of memory" in text
    assert "Change: memory_mb 128 -> 384 (mode apply, applied)" in text
    assert "Next: Watch the next windows." in text
    assert "<td>peak 301 MB</td>" in html and "<b>Next:</b> Watch the next windows." in html


def test_with_smtp_down_mail_queues_and_arrives_exactly_once_when_it_is_back(
    tmp_path: Path, clock: FakeClock, start_smtp: Callable[..., MailServer]
) -> None:
    port = free_port()  # nothing listens here yet
    with mail_center(tmp_path, clock, port) as center:
        center.notify([decision("a"), decision("b")])
        clock.advance(30)
        for _ in range(3):  # attempts fail fast, with growing pauses
            assert center.flush(0) == 2
            clock.advance(60)
        (head, _) = center.outbox.rows()
        assert head.attempts == 3 and "ConnectionRefusedError" in (head.last_error or "")
        server = start_smtp(port)
        clock.advance(60)
        assert center.flush(0) == 0
        for _ in range(3):
            clock.advance(3600)
            center.flush(0)
        assert [r.state for r in center.outbox.rows()] == ["sent", "sent"]
    subjects = sorted(parse(raw)["Subject"].strip() for _, raw in server.handler.messages)
    assert len(subjects) == 2 and "resize" not in "".join(subjects)
    assert "aws:eu-west-1/a" in subjects[0] and "aws:eu-west-1/b" in subjects[1]


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"pa55word"
    return AuthResult(success=ok, handled=False)


@pytest.mark.parametrize("password", ["pa55word", "wrong-pa55"])
@pytest.mark.parametrize("source", ["env", "file"])
def test_starttls_and_authentication(
    tmp_path: Path,
    clock: FakeClock,
    start_smtp: Callable[..., MailServer],
    certificate: Certificate,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    password: str,
) -> None:
    server = start_smtp(
        tls_context=server_tls(certificate),
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    if source == "env":
        monkeypatch.setenv("TEST_SMTP_PASSWORD", password)
        secret = {"password_env": "TEST_SMTP_PASSWORD"}
    else:
        (tmp_path / "password").write_text(password + "\n")
        secret = {"password_file": str(tmp_path / "password")}
    with mail_center(
        tmp_path,
        clock,
        server.port,
        security="starttls",
        ca_file=str(certificate.cert),
        username="tuner",
        **secret,
    ) as center:
        center.notify([decision()])
        clock.advance(30)
        pending = center.flush(0)
        (row,) = center.outbox.rows()
    if password == "pa55word":
        assert (pending, row.state, len(server.handler.messages)) == (0, "sent", 1)
    else:  # not delivered, kept for a retry, and the error does not repeat the password
        assert (pending, row.state, server.handler.messages) == (1, "queued", [])
        assert "SMTPAuthenticationError" in (row.last_error or "")
        assert password not in (row.last_error or "")


def test_implicit_tls(
    tmp_path: Path,
    clock: FakeClock,
    start_smtp: Callable[..., MailServer],
    certificate: Certificate,
) -> None:
    server = start_smtp(ssl_context=server_tls(certificate))
    center = mail_center(
        tmp_path, clock, server.port, security="tls", ca_file=str(certificate.cert)
    )
    with center:
        center.notify([decision()])
        clock.advance(30)
        assert center.flush(0) == 0
    assert len(server.handler.messages) == 1


def test_a_subject_that_needs_encoding_is_folded_after_its_first_words(
    tmp_path: Path, clock: FakeClock, start_smtp: Callable[..., MailServer]
) -> None:
    server = start_smtp()
    with mail_center(tmp_path, clock, server.port) as center:
        center.notify([decision("données-clients-très-longues-à-traiter-en-lots-de-nuit")])
        clock.advance(30)
        assert center.flush(0) == 0
    ((_, raw),) = server.handler.messages
    subject = parse(raw)["Subject"]
    assert subject.startswith("[tuner] [CRITICAL] aws:eu-west-1/données-clients")
    [line] = [x for x in raw.split(b"\r\n") if x.startswith(b"Subject:")]
    assert line.startswith(b"Subject: [tuner] [CRITICAL] ")
