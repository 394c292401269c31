"""A storm of decisions yields a bounded number of grouped, readable messages."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from tests.fakes import FakeClock
from tests.notify.conftest import T0, HttpReceiver, decision, hook_settings
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.model import Severity
from tuner.notify import build_notifier

FUNCTIONS = 500
RULES = ("error-rate", "cold-starts", "slow-p95", "throttles", "oom")


def storm(cycle: int) -> list[Decision]:
    """500 functions x 5 rules, four times over; the odd functions lose orders-db."""
    return [
        decision(
            f"fn-{i % FUNCTIONS:03d}",
            RULES[(i // FUNCTIONS) % len(RULES)],
            action="notify",
            state=State.NOTIFIED,
            change=None,
            severity=Severity.WARNING,
            group="dependency:orders-db" if i % 2 else "",
            worst_dependency="orders-db" if i % 2 else "cache",
            dependency_error_rate=0.9 if i % 2 else 0.0,
            dependency_failing_functions=250.0,
            time_=T0 + cycle * 60.0,
        )
        for i in range(10_000)
    ]


def test_ten_thousand_decisions_make_a_bounded_number_of_messages(
    tmp_path: Path, clock: FakeClock, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_HOOK_URL", http_receiver.url)
    settings = hook_settings("TEST_HOOK_URL", default_channels=["hook", "console"])
    out = io.StringIO()
    with build_notifier(settings, tmp_path / "t.db", clock, stream=out) as center:
        started = time.perf_counter()
        center.notify(storm(0))
        notify_seconds = time.perf_counter() - started
        for cycle in range(1, 7):  # an hour of the same storm, one cycle every 10 minutes
            clock.advance(600)
            center.notify(storm(cycle))
            center.flush(0)
        counts = center.outbox.counts()
    assert notify_seconds < 3.0
    # each channel: one digest at group_wait, then nothing new for the rest of the hour
    assert counts == {"sent": 2}
    (request,) = http_receiver.requests
    groups = request.body["groups"]
    assert len(groups) == 251  # the dependency's group and the 250 functions not using it
    assert sum(len(g["firing"]) for g in groups) == 10_000 // 4  # 500 functions x 5 rules
    assert "The dependency orders-db failed for 250 functions at once" in request.body["text"]
    text = out.getvalue()
    assert len(text) < 20_000  # a person can read it
    assert "... and 231 more groups" in text
