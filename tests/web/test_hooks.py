"""The metrics hooks outside the loop: message deliveries and rule reloads are counted."""

from __future__ import annotations

import io
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import FakeClock, FakeProvider
from tuner.daemon.config import TunerConfig
from tuner.daemon.wiring import build
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.model import FunctionRef, Mode, Severity
from tuner.notify import build_notifier
from tuner.web.attaching import attach


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_deliveries_and_rule_reloads_are_counted(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: oom\n    when: ooms > 0.0\n    actions: [{action: notify}]\n"
    )
    clock = FakeClock()
    notifier = build_notifier(
        {"channels": {"console": {"type": "console"}}},
        tmp_path / "tuner.db",
        clock,
        stream=io.StringIO(),
    )
    config = TunerConfig(store=str(tmp_path / "tuner.db"), rules=[str(rules)])
    tuner = build(config, clock=clock, providers=[FakeProvider()], notifier=notifier)
    insight = attach(tuner, None)
    try:
        decision = Decision(
            id="d1",
            time=clock.now(),
            ref=FunctionRef("fake", "f"),
            rule="oom",
            action="notify",
            severity=Severity.CRITICAL,
            mode=Mode.APPLY,
            state=State.NOTIFIED,
            summary="ran out",
        )
        notifier.notify([decision])
        notifier.queue_due(include_waiting=True)
        assert _samples(insight.metrics.exposition())[("tuner_outbox_pending", ())] == 1
        assert notifier.flush(5.0, include_waiting=True) == 0
        rules.write_text("rules:\n  - name: oom\n    when: ooms >\n")  # broken: refused
        assert tuner.rules.reload() is False
        rules.write_text(
            "rules:\n  - name: oom2\n    when: ooms > 1.0\n    actions: [{action: notify}]\n"
        )
        assert tuner.rules.reload() is True
        samples = _samples(insight.metrics.exposition())
        assert (
            samples[("tuner_notifications_total", (("channel", "console"), ("result", "sent")))]
            == 1
        )
        assert samples[("tuner_outbox_pending", ())] == 0
        assert samples[("tuner_rule_reloads_total", (("result", "error"),))] == 1
        assert samples[("tuner_rule_reloads_total", (("result", "ok"),))] == 1
    finally:
        insight.close()
        tuner.close()
