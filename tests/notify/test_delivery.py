"""The outbox: retries with backoff, restarts, crashes mid-send, and a loop never held up."""

from __future__ import annotations

import io
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeClock
from tests.notify.conftest import (
    HttpReceiver,
    MailServer,
    WallClock,
    decision,
    free_port,
    hook_settings,
    mail_settings,
    resolved,
)
from tuner.domain.lifecycle import State
from tuner.domain.model import Severity
from tuner.domain.ports import Notifier
from tuner.notify import build_notifier
from tuner.notify.delivery import backoff
from tuner.notify.outbox import Outbox
from tuner.notify.settings import DeliverySettings


def test_backoff_doubles_up_to_the_maximum_with_jitter() -> None:
    settings = DeliverySettings(retry_initial=5, retry_max=60)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (9, 60)]:
        delays = [backoff(attempt, settings, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4  # spread, not lock-step


def test_a_restart_resumes_pending_messages_and_waiting_groups(
    tmp_path: Path, clock: FakeClock, start_smtp: Callable[..., MailServer]
) -> None:
    port = free_port()
    db = tmp_path / "tuner.db"
    with build_notifier(mail_settings(port), db, clock) as first:
        first.notify([decision("a")])
        clock.advance(30)
        assert first.flush(0) == 1  # SMTP is down: queued
        first.notify([decision("b")])  # still inside group_wait at shutdown
    server = start_smtp(port)
    clock.advance(60)
    with build_notifier(mail_settings(port), db, clock) as second:
        assert second.flush(0) == 0
        assert [r.state for r in second.outbox.rows()] == ["sent", "sent"]
    assert len(server.handler.messages) == 2


def claim_and_crash(db: Path, clock: FakeClock, settings: dict[str, Any]) -> None:
    """A tuner that queued a message and died in the middle of sending it."""
    center = build_notifier(settings, db, clock)
    center.notify([decision()])
    clock.advance(30)
    assert center.queue_due() == 1
    claim = center.outbox.claim("mail", clock.now(), lease=60)
    assert claim is not None
    center.close()


def test_a_message_in_doubt_after_a_crash_is_not_sent_again(
    tmp_path: Path, clock: FakeClock, start_smtp: Callable[..., MailServer]
) -> None:
    server = start_smtp()
    db = tmp_path / "tuner.db"
    claim_and_crash(db, clock, mail_settings(server.port))
    with build_notifier(mail_settings(server.port), db, clock) as restarted:
        assert restarted.flush(0) == 0
        assert [r.state for r in restarted.outbox.rows()] == ["sending"]  # lease still held
        clock.advance(61)
        restarted.flush(0)
        (row,) = restarted.outbox.rows()
    assert row.state == "in-doubt" and "may have arrived" in (row.last_error or "")
    assert server.handler.messages == []


def test_resend_in_doubt_sends_a_message_again_after_a_crash(
    tmp_path: Path, clock: FakeClock, start_smtp: Callable[..., MailServer]
) -> None:
    server = start_smtp()
    db = tmp_path / "tuner.db"
    settings = mail_settings(server.port, resend_in_doubt=True)
    claim_and_crash(db, clock, settings)
    clock.advance(61)
    with build_notifier(settings, db, clock) as restarted:
        assert restarted.flush(0) == 0
        (row,) = restarted.outbox.rows()
    assert (row.state, row.attempts) == ("sent", 2)
    assert len(server.handler.messages) == 1


def test_a_message_not_delivered_within_give_up_after_is_dead(
    tmp_path: Path, clock: FakeClock
) -> None:
    with build_notifier(mail_settings(free_port()), tmp_path / "t.db", clock) as center:
        center.notify([decision()])
        clock.advance(30)
        for _ in range(100):
            center.flush(0)
            clock.advance(60)
        (row,) = center.outbox.rows()
    assert row.state == "dead" and 55 <= row.attempts <= 65  # 1 h of retries, 30-60 s apart


def test_messages_of_a_channel_keep_their_order_through_retries(
    tmp_path: Path, clock: FakeClock, start_smtp: Callable[..., MailServer]
) -> None:
    port = free_port()
    settings = mail_settings(port)
    with build_notifier(settings, tmp_path / "t.db", clock) as center:
        center.notify([decision(state=State.NOTIFIED, change=None, action="notify")])
        clock.advance(30)
        center.flush(0)  # the firing message fails
        center.notify([resolved()])
        clock.advance(300)
        center.flush(0)  # the resolved message is queued behind it
        server = start_smtp(port)
        clock.advance(60)
        assert center.flush(0) == 0
    subjects = [raw.split(b"Subject:")[1][:40] for _, raw in server.handler.messages]
    assert len(subjects) == 2 and b"RESOLVED" not in subjects[0] and b"RESOLVED" in subjects[1]


def test_a_channel_that_hangs_never_slows_notify(
    tmp_path: Path, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    http_receiver.hold = hold = threading.Event()  # accepts the request, never answers
    monkeypatch.setenv("TEST_HOOK_URL", http_receiver.url)
    settings = hook_settings("TEST_HOOK_URL", group_wait=0)
    center = build_notifier(settings, tmp_path / "t.db", WallClock(), tick=0.02)
    center.start()
    try:
        center.notify([decision("first")])
        deadline = time.monotonic() + 5
        while not http_receiver.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert http_receiver.requests, "the delivery thread should be sending by now"
        for _ in range(10):  # more news for the group: kept, not due before group_interval
            center.notify([decision("first") for _ in range(100)])
        # every notify returned while the receiver still holds its answer
        assert not hold.is_set()
        assert [r.state for r in center.outbox.rows()] == ["sending"]
    finally:
        center.close()
        hold.set()
    # the receiver never answered in time: the message may have arrived, so it is not resent
    reader = Outbox(tmp_path / "t.db", owner="reader")
    assert [(r.group, r.state) for r in reader.rows()] == [
        ("function:aws:eu-west-1/first", "in-doubt")
    ]
    reader.close()


def test_webhook_posts_json_with_an_idempotency_key(
    tmp_path: Path, clock: FakeClock, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_HOOK_URL", http_receiver.url)
    settings = hook_settings("TEST_HOOK_URL")
    with build_notifier(settings, tmp_path / "t.db", clock) as center:
        center.notify([decision(peak_memory_mb=301.0)])
        clock.advance(30)
        assert center.flush(0) == 0
    (request,) = http_receiver.requests
    assert request.headers["Idempotency-Key"] == request.body["id"]
    assert request.headers["Content-Type"] == "application/json"
    (group,) = request.body["groups"]
    assert group["key"] == "function:aws:eu-west-1/resize"
    assert group["firing"][0]["facts"]["peak_memory_mb"] == 301.0
    assert request.body["title"].startswith("[CRITICAL]")


def test_the_console_prints_one_compact_block_per_message(tmp_path: Path, clock: FakeClock) -> None:
    out = io.StringIO()
    with build_notifier({}, tmp_path / "t.db", clock, stream=out) as center:
        center.notify([decision("a"), decision("b", state=State.OBSERVED)])
        clock.advance(30)
        center.flush(0)
    lines = out.getvalue().splitlines()
    assert lines[1] == "[CRITICAL] aws:eu-west-1/a: applied: memory_mb 128 -> 384 (oom)"
    assert set(lines[0]) == {"-"} and lines[0] == lines[2]
    assert "aws:eu-west-1/b" not in out.getvalue()  # observed decisions are only recorded


def test_unknown_channels_in_a_rule_fall_back_to_the_default_ones(
    tmp_path: Path, clock: FakeClock
) -> None:
    out = io.StringIO()
    with build_notifier({}, tmp_path / "t.db", clock, stream=out) as center:
        center.notify([decision(channels=("no-such-channel",))])
        clock.advance(30)
        center.flush(0)
    assert "aws:eu-west-1/resize" in out.getvalue()


def test_background_threads_deliver_without_flush(
    tmp_path: Path, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_HOOK_URL", http_receiver.url)
    settings = hook_settings("TEST_HOOK_URL", group_wait="100ms")
    with build_notifier(settings, tmp_path / "t.db", WallClock(), tick=0.02) as center:
        center.start()
        center.notify([decision()])
        deadline = time.monotonic() + 5
        while not http_receiver.requests and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(http_receiver.requests) == 1


def test_the_center_is_the_notifier_port(tmp_path: Path, clock: FakeClock) -> None:
    with build_notifier({}, tmp_path / "t.db", clock, stream=io.StringIO()) as center:
        assert isinstance(center, Notifier)


def test_routes_add_channels_by_severity(
    tmp_path: Path, clock: FakeClock, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_HOOK_URL", http_receiver.url)
    settings = hook_settings(
        "TEST_HOOK_URL",
        default_channels=["console"],
        routes=[{"severity": ["critical"], "channels": ["hook", "console"]}],
    )
    out = io.StringIO()
    with build_notifier(settings, tmp_path / "t.db", clock, stream=out) as center:
        center.notify([decision("hot"), decision("mild", severity=Severity.WARNING)])
        clock.advance(30)
        center.flush(0)
    (request,) = http_receiver.requests  # the critical one only
    assert request.body["groups"][0]["key"] == "function:aws:eu-west-1/hot"
    assert out.getvalue().count("[CRITICAL] aws:eu-west-1/hot") == 1  # once, though named twice
    assert "aws:eu-west-1/mild" in out.getvalue()
