"""Slack incoming webhooks against a local HTTP receiver: payload, 429, retries, pacing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.notify.conftest import HttpReceiver, WallClock, decision
from tuner.notify import NotificationCenter, build_notifier


def slack_center(
    receiver: HttpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **slack: object
) -> NotificationCenter:
    monkeypatch.setenv("TEST_SLACK_URL", receiver.url)
    settings = {
        "channels": {"team": {"type": "slack", "webhook_url_env": "TEST_SLACK_URL", **slack}},
        "routing": {"default_channels": ["team"]},
        "delivery": {"retry_initial": "100ms"},
    }
    return build_notifier(settings, tmp_path / "tuner.db", WallClock())


def test_a_message_arrives_as_block_kit_with_a_text_fallback(
    http_receiver: HttpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with slack_center(http_receiver, tmp_path, monkeypatch) as center:
        center.notify([decision(summary="14 of 1200 invocations ran out of memory")])
        assert center.flush(timeout=5, include_waiting=True) == 0
    (request,) = http_receiver.requests
    assert request.path == "/services/T000/B000/s3cr3t-t0ken"
    assert request.body["text"].startswith("[CRITICAL] aws:eu-west-1/resize: applied")
    header, *sections = request.body["blocks"]
    assert header["type"] == "header"
    assert "14 of 1200 invocations ran out of memory" in sections[0]["text"]["text"]


def test_a_429_retry_after_is_honoured(
    http_receiver: HttpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    http_receiver.script = [(429, {"Retry-After": "1"})]
    with slack_center(http_receiver, tmp_path, monkeypatch, min_interval=0) as center:
        center.notify([decision()])
        assert center.flush(timeout=5, include_waiting=True) == 0
    first, second = http_receiver.requests
    assert second.at - first.at >= 0.95
    assert second.body == first.body


def test_a_server_error_is_a_failure_and_retried(
    http_receiver: HttpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    http_receiver.script = [(500, {}), (503, {})]
    with slack_center(http_receiver, tmp_path, monkeypatch) as center:
        center.notify([decision()])
        assert center.flush(timeout=5, include_waiting=True) == 0
        (row,) = center.outbox.rows()
    assert len(http_receiver.requests) == 3
    assert (row.state, row.attempts, row.last_error) == ("sent", 3, "HTTP 503")


def test_at_most_one_message_per_second_per_webhook(
    http_receiver: HttpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with slack_center(http_receiver, tmp_path, monkeypatch) as center:
        center.notify([decision("a"), decision("b"), decision("c")])  # three groups
        assert center.flush(timeout=5, include_waiting=True) == 0
    times = [r.at for r in http_receiver.requests]
    assert len(times) == 3
    assert all(later - earlier >= 0.95 for earlier, later in zip(times, times[1:], strict=False))
