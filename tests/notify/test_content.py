"""Message content: what happened, what changed, what to do next, and the evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.notify.conftest import T0, decision
from tuner.domain.errors import ConfigError
from tuner.domain.lifecycle import State
from tuner.domain.model import Change, Knob
from tuner.notify.alerts import Alert
from tuner.notify.grouping import Section
from tuner.notify.messages import Message
from tuner.notify.proposals import propose
from tuner.notify.rendering import Renderer

OOM: dict[str, Any] = dict(
    invocations=1200.0,
    ooms=14.0,
    oom_rate=14 / 1200,
    memory_mb=128.0,
    peak_memory_mb=301.0,
    window_s=300.0,
    console_url="https://console.aws.amazon.com/lambda/home#/functions/resize",
    flame_graph_path="/var/lib/tuner/flames/resize.svg",
)


def section(*alerts: Alert, key: str = "", resolved: tuple[Alert, ...] = ()) -> Section:
    return Section(
        channel="c",
        key=key or alerts[0].group if alerts else key,
        firing=alerts,
        new=frozenset(a.key for a in alerts),
        resolved=resolved,
    )


def render(
    *sections: Section, channel_type: str = "email", templates: Path | None = None
) -> Message:
    return Renderer(templates).render("c", channel_type, list(sections), T0)


def test_an_applied_change_says_what_happened_what_changed_and_links_the_evidence() -> None:
    applied = Alert.from_decision(
        decision(
            summary="14 of 1200 invocations ran out of memory; peak 301 MB of 128 MB",
            advice="Nothing to do unless it happens again at 384 MB.",
            **OOM,
        )
    )
    message = render(section(applied))
    assert message.title == ("[CRITICAL] aws:eu-west-1/resize: applied: memory_mb 128 -> 384 (oom)")
    text = message.text
    assert "14 of 1200 invocations ran out of memory; peak 301 MB of 128 MB" in text
    assert "5 min window ending 2027-01-15 08:00 UTC" in text
    assert "Facts: invocations 1,200; ooms 14 (1.2%); memory 128 MB, peak 301 MB (235%)" in text
    assert "Change: memory_mb 128 -> 384 (mode apply, applied)" in text
    assert "Next: Nothing to do unless it happens again at 384 MB." in text
    assert "console: https://console.aws.amazon.com/lambda/home#/functions/resize" in text
    assert "flame graph: /var/lib/tuner/flames/resize.svg" in text
    assert '<a href="https://console.aws.amazon.com/lambda/home#/functions/resize">' in message.html


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (State.RECOMMENDED, "recommended, not applied"),
        (State.ROLLED_BACK, "rolled back"),
        (State.FAILED, "failed to apply"),
        (State.IMPROVED, "applied, and it helped"),
    ],
)
def test_the_mode_and_state_are_spelled_out(state: State, words: str) -> None:
    d = decision(state=state, change=Change(Knob.TIMEOUT_S, 3.0, 6.0), reason="AccessDenied")
    text = render(section(Alert.from_decision(d))).text
    assert f"timeout_s 3 -> 6 (mode apply, {words}" in text
    assert "Why: AccessDenied" in text


def test_a_dependency_failing_for_several_functions_is_named_as_the_problem() -> None:
    alerts = [
        Alert.from_decision(
            decision(
                name,
                "dependency-down",
                action="notify",
                state=State.NOTIFIED,
                group="dependency:payments-api",
                worst_dependency="payments-api",
                dependency_error_rate=0.8,
                dependencies={
                    "payments-api": {"calls": 50.0, "errors": 40.0, "latency_p95_ms": 1200.0}
                },
            )
        )
        for name in ("checkout", "billing")
    ]
    message = render(section(*alerts))
    assert message.title == "[CRITICAL] dependency payments-api: 2 findings on 2 functions"
    assert "dependency payments-api 40/50 calls failed (80.0%), p95 1,200 ms" in message.text
    assert (
        "The dependency payments-api failed for 2 functions at once (aws:eu-west-1/billing, "
        "aws:eu-west-1/checkout): the problem is the dependency, not the functions."
    ) in message.text


def test_proposals_across_alerts_and_about_fates() -> None:
    rolled = Alert.from_decision(
        decision("api", state=State.ROLLED_BACK, reason="rolled back: it made things worse")
    )
    failed = Alert.from_decision(decision("etl", state=State.FAILED, reason="AccessDenied"))
    many = [
        Alert.from_decision(decision(f"f{i}", "cold-starts", state=State.NOTIFIED))
        for i in range(4)
    ]
    proposals = propose([rolled, failed, *many])
    text = "\n".join(proposals)
    assert "tuner undid memory_mb 128 -> 384 on aws:eu-west-1/api" in text
    assert "could not apply more-memory on aws:eu-west-1/etl (AccessDenied)" in text
    assert "4 functions hit 'cold-starts' at once" in text
    assert len(proposals) == len(set(proposals)) == 3


def test_resolved_messages() -> None:
    gone = Alert.from_decision(decision(state=State.NOTIFIED, change=None))
    message = render(section(key=gone.group, resolved=(gone,)))
    assert message.kind == "resolved"
    assert message.title == "RESOLVED: function aws:eu-west-1/resize"
    assert "RESOLVED aws:eu-west-1/resize: oom" in message.text


def test_slack_gets_block_kit_with_escaped_text_and_links() -> None:
    alert = Alert.from_decision(decision(summary="p95 > timeout & <rising>", **OOM))
    message = render(section(alert), channel_type="slack")
    header, *sections = message.blocks
    assert header == {"type": "header", "text": {"type": "plain_text", "text": message.title}}
    body = "\n".join(b["text"]["text"] for b in sections)
    assert all(b["type"] == "section" and b["text"]["type"] == "mrkdwn" for b in sections)
    assert "p95 &gt; timeout &amp; &lt;rising&gt;" in body
    assert "<https://console.aws.amazon.com/lambda/home#/functions/resize|console>" in body
    assert not message.html and not message.data


def test_html_is_escaped() -> None:
    alert = Alert.from_decision(decision(summary="<script>alert(1)</script>"))
    html = render(section(alert)).html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_webhook_data_carries_every_alert_in_full() -> None:
    alerts = [Alert.from_decision(decision(f"f{i}", **OOM)) for i in range(30)]
    message = render(section(*alerts, key="rule=oom"), channel_type="webhook")
    (group,) = message.data["groups"]
    assert len(group["firing"]) == 30 and group["firing"][0]["new"] is True
    assert group["firing"][0]["facts"]["peak_memory_mb"] == 301.0
    assert "... and 20 more" in message.text  # the text shows the first ten


def test_templates_can_be_overridden_by_a_directory(tmp_path: Path) -> None:
    (tmp_path / "title.txt.j2").write_text("tuner says: {{ notice.firing_count }} findings")
    message = render(section(Alert.from_decision(decision())), templates=tmp_path)
    assert message.title == "tuner says: 1 findings"
    assert "memory_mb 128 -> 384" in message.text  # the other templates are the bundled ones


def test_a_broken_override_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "text.txt.j2").write_text("{% for x in %}")
    with pytest.raises(ConfigError, match="text.txt.j2"):
        Renderer(tmp_path)


def test_an_override_failing_at_render_time_falls_back_to_the_bundled_one(tmp_path: Path) -> None:
    (tmp_path / "title.txt.j2").write_text("{{ notice.no_such_field }}")
    message = render(section(Alert.from_decision(decision())), templates=tmp_path)
    assert message.title.startswith("[CRITICAL] aws:eu-west-1/resize")


def test_zero_counts_are_left_out_unless_zero_tells_something() -> None:
    alert = Alert.from_decision(
        decision(
            "prices",
            "data-latency",
            state=State.NOTIFIED,
            change=None,
            summary="p95 610 ms on a slow data source",
            invocations=40.0,
            errors=0.0,
            ooms=0.0,
            timeout_rate=0.0,
            cache_ttl_s=0.0,
            duration_p95_ms=610.1,
        )
    )
    text = render(section(alert)).text
    assert "Facts: invocations 40; duration p95 610.1 ms; cache_ttl_s 0 s" in text
    assert "ooms" not in text and "errors" not in text
    assert text.count("p95 610 ms on a slow data source") == 1  # the headline says it once
    assert "When: 5 min window" not in text and "When: window ending" in text
