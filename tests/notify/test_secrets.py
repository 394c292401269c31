"""Secrets (webhook URLs, passwords) never reach logs, errors or the database."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.fakes import FakeClock
from tests.notify.conftest import HttpReceiver, MailServer, decision, free_port
from tuner.notify import build_notifier, load_settings

TOKEN = "s3cr3t-t0ken"  # part of the receiver's URL path, like a Slack webhook's
PASSWORD = "hunter2-pa55"


def test_secrets_stay_out_of_logs_errors_and_the_outbox(
    tmp_path: Path,
    clock: FakeClock,
    http_receiver: HttpReceiver,
    start_smtp: Callable[..., MailServer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    assert TOKEN in http_receiver.url
    dead_url = f"http://127.0.0.1:{free_port()}/hook/{TOKEN}"
    monkeypatch.setenv("TEST_SLACK_URL", http_receiver.url)
    monkeypatch.setenv("TEST_DEAD_URL", dead_url)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    server = start_smtp()  # no AUTH offered: login fails with the server's words
    raw = {
        "channels": {
            "slack": {"type": "slack", "webhook_url_env": "TEST_SLACK_URL"},
            "dead": {"type": "webhook", "url_env": "TEST_DEAD_URL"},
            "mail": {
                "type": "email",
                "host": "127.0.0.1",
                "port": server.port,
                "security": "none",
                "from": "t@example.com",
                "to": ["o@example.com"],
                "username": "tuner",
                "password_env": "TEST_SMTP_PASSWORD",
            },
        },
        "routing": {"default_channels": ["slack", "dead", "mail"]},
    }
    http_receiver.script = [(500, {}), (404, {}), (429, {"Retry-After": "0"})]
    caplog.set_level(logging.DEBUG)
    with capture_logs() as events, build_notifier(raw, tmp_path / "tuner.db", clock) as center:
        center.notify([decision()])
        for _ in range(5):
            clock.advance(60)
            center.flush(0)
        rows = center.outbox.rows()
        settings_text = repr(load_settings(raw)) + repr(center.__dict__)
    assert {r.channel: r.state for r in rows} == {
        "slack": "sent",
        "dead": "queued",
        "mail": "queued",
    }
    assert all(r.last_error for r in rows)  # the failures were recorded ...
    assert len(events) >= 8  # ... and logged
    captured = capfd.readouterr()
    for where, text in {
        "structlog": repr(events),
        "logging": caplog.text,
        "output": captured.out + captured.err,
        "outbox errors": repr(rows),
        "settings": settings_text,
        "database": b"".join(p.read_bytes() for p in tmp_path.glob("tuner.db*")).decode("latin-1"),
    }.items():
        assert TOKEN not in text, where
        assert PASSWORD not in text, where
