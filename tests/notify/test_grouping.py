"""Grouping over virtual time: waits, intervals, repeats, dedup, resolution, inhibition."""

from __future__ import annotations

import json

from tests.notify.conftest import T0, decision
from tuner.domain.lifecycle import State
from tuner.domain.model import Change, Knob, Severity
from tuner.notify.alerts import Alert
from tuner.notify.grouping import Group, Grouper, group_key
from tuner.notify.rendering import Renderer
from tuner.notify.settings import RoutingSettings

ROUTING = RoutingSettings(group_wait=30, group_interval=300, repeat_interval=3600)


def alert(name: str = "resize", rule: str = "errors", **kw: object) -> Alert:
    kw.setdefault("state", State.NOTIFIED)
    return Alert.from_decision(decision(name, rule, action="notify", **kw))  # type: ignore[arg-type]


def told(grouper: Grouper, at: float) -> list[tuple[str, list[str], list[str]]]:
    """(group key, firing refs, resolved refs) of every section due at ``T0 + at``."""
    return [
        (s.key, sorted(a.ref for a in s.firing), sorted(a.ref for a in s.resolved))
        for s in grouper.take_due(T0 + at)
    ]


def test_a_new_group_waits_group_wait_and_collects_what_arrives_meanwhile() -> None:
    g = Grouper(ROUTING)
    g.add("c", alert("a", group="dependency:db"), T0)
    g.add("c", alert("b", group="dependency:db"), T0 + 10)
    assert told(g, 29) == []
    assert told(g, 30) == [("dependency:db", ["aws:eu-west-1/a", "aws:eu-west-1/b"], [])]


def test_repeated_findings_are_deduplicated_until_repeat_interval() -> None:
    g = Grouper(ROUTING)
    g.add("c", alert(), T0)
    assert len(told(g, 30)) == 1
    for minute in range(1, 60):  # the core reports the same finding every cycle
        g.add("c", alert(), T0 + 60 * minute)
        assert told(g, 60 * minute + 1) == []
    g.add("c", alert(), T0 + 3600)
    (section,) = g.take_due(T0 + 3630)
    assert section.repeat and not section.new


def test_news_waits_for_group_interval_after_the_last_message() -> None:
    g = Grouper(ROUTING)
    g.add("c", alert("a", group="dependency:db"), T0)
    told(g, 30)
    g.add("c", alert("b", group="dependency:db"), T0 + 40)
    assert told(g, 329) == []
    (section,) = g.take_due(T0 + 330)
    assert section.new == {alert("b").key}
    assert len(section.firing) == 2


def test_a_changed_outcome_of_the_same_finding_is_news() -> None:
    g = Grouper(ROUTING)
    g.add("c", alert(state=State.RECOMMENDED), T0)
    told(g, 30)
    bigger = Change(Knob.MEMORY_MB, 128, 512)
    g.add("c", alert(state=State.RECOMMENDED, change=bigger), T0 + 100)
    (section,) = g.take_due(T0 + 330)
    assert section.new == {alert().key}
    assert section.firing[0].after == 512


def test_events_are_told_once_and_then_forgotten() -> None:
    g = Grouper(ROUTING)
    first = Alert.from_decision(decision(state=State.APPLIED))
    second = Alert.from_decision(decision(state=State.APPLIED))
    g.add("c", first, T0)
    g.add("c", second, T0 + 1)
    (section,) = g.take_due(T0 + 30)
    assert {a.decision_id for a in section.firing} == {first.decision_id, second.decision_id}
    assert g.take_due(T0 + 10 * 3600) == []
    assert len(g) == 0


def test_events_soon_after_a_message_wait_for_group_interval() -> None:
    g = Grouper(ROUTING)
    g.add("c", Alert.from_decision(decision(state=State.APPLIED)), T0)
    assert len(told(g, 30)) == 1
    g.add("c", Alert.from_decision(decision(state=State.ROLLED_BACK)), T0 + 60)
    assert told(g, 90) == []  # not a new group with a short group_wait: news waits
    assert [s.firing[0].state for s in g.take_due(T0 + 330)] == ["rolled-back"]


def test_resolved_findings_get_a_resolved_message_then_the_group_closes() -> None:
    g = Grouper(ROUTING)
    g.add("c", alert(), T0)
    told(g, 30)
    g.resolve("aws:eu-west-1/resize", "errors", T0 + 100)
    assert told(g, 200) == []  # group_interval since the last message
    assert told(g, 330) == [("function:aws:eu-west-1/resize", [], ["aws:eu-west-1/resize"])]
    assert told(g, 630) == [] and len(g) == 0  # closed once group_interval has passed


def test_a_finding_resolved_before_anyone_heard_of_it_is_dropped_silently() -> None:
    g = Grouper(ROUTING)
    g.add("c", alert(), T0)
    g.resolve("aws:eu-west-1/resize", "errors", T0 + 10)
    assert told(g, 30) == [] and len(g) == 0


def test_silence_never_resolves_a_finding_it_says_no_data_once() -> None:
    """Not reported for resolve_timeout: still open, told once as without data, never resolved."""
    g = Grouper(ROUTING.model_copy(update={"resolve_timeout": 600}))
    finding = alert()
    g.add("c", finding, T0)
    told(g, 30)
    (section,) = g.take_due(T0 + 600)
    assert section.firing == (finding,) and section.resolved == ()
    assert section.stale == {finding.key} and section.new == {finding.key}
    text = Renderer().render("c", "email", [section], T0 + 600).text
    assert "NO DATA since 2027-01-15 08:00 UTC, still open" in text and "RESOLVED" not in text
    assert g.take_due(T0 + 1200) == []  # told once; reminders follow repeat_interval
    g.add("c", finding, T0 + 1300)  # reported again: it has data again
    (again,) = g.take_due(T0 + 1300 + 300)
    assert again.stale == frozenset() and again.new == {finding.key}


def test_send_resolved_false_closes_groups_quietly() -> None:
    g = Grouper(ROUTING.model_copy(update={"send_resolved": False}))
    g.add("c", alert(), T0)
    told(g, 30)
    g.resolve("aws:eu-west-1/resize", "errors", T0 + 100)
    assert told(g, 1000) == [] and len(g) == 0


def test_a_dependency_outage_silences_findings_but_not_changes_of_dependent_functions() -> None:
    g = Grouper(ROUTING)
    outage = alert("checkout", "dependency-down", group="dependency:payments-api")
    g.add("c", outage, T0)
    g.add("c", alert("checkout", "error-rate", severity=Severity.WARNING), T0)
    g.add("c", alert("billing", "error-rate", worst_dependency="payments-api"), T0)
    g.add("c", Alert.from_decision(decision("checkout", "oom")), T0)  # an applied change
    g.add("c", alert("search", "error-rate"), T0)  # does not use payments-api
    sections = {s.key: s for s in g.take_due(T0 + 30)}
    assert set(sections) == {
        "dependency:payments-api",
        "function:aws:eu-west-1/checkout",
        "function:aws:eu-west-1/search",
    }
    assert [a.rule for a in sections["function:aws:eu-west-1/checkout"].firing] == ["oom"]
    assert sections["dependency:payments-api"].silenced == 2
    # the dependency recovers: what it held back and is still going on is told now
    g.resolve("aws:eu-west-1/checkout", "dependency-down", T0 + 100)
    g.add("c", alert("billing", "error-rate", worst_dependency="payments-api"), T0 + 100)
    keys = {s.key for s in g.take_due(T0 + 330)}
    assert "function:aws:eu-west-1/billing" in keys and "dependency:payments-api" in keys


def test_inhibition_can_be_switched_off() -> None:
    g = Grouper(ROUTING.model_copy(update={"inhibit": False}))
    g.add("c", alert("checkout", "dependency-down", group="dependency:db"), T0)
    g.add("c", alert("checkout", "error-rate"), T0)
    assert len(g.take_due(T0 + 30)) == 2


def test_each_channel_groups_on_its_own() -> None:
    g = Grouper(ROUTING)
    g.add("slack", alert(), T0)
    g.add("mail", alert(), T0 + 20)
    assert [s.channel for s in g.take_due(T0 + 30)] == ["slack"]
    assert [s.channel for s in g.take_due(T0 + 50)] == ["mail"]


def test_group_by_other_fields() -> None:
    a = alert("a", "oom", group="dependency:db")
    assert group_key(a, ["rule"]) == "rule=oom"
    assert group_key(a, ["provider", "severity"]) == "provider=aws,severity=critical"
    assert group_key(a, ["dependency"]) == "dependency=db"
    g = Grouper(ROUTING.model_copy(update={"group_by": ["rule"]}))
    for name in ("a", "b", "c"):
        g.add("c", alert(name, "oom"), T0)
    (section,) = g.take_due(T0 + 30)
    assert len(section.firing) == 3


def test_include_waiting_tells_everything_that_has_something_to_say() -> None:
    g = Grouper(ROUTING)
    g.add("c", alert(), T0)
    assert len(g.take_due(T0 + 1, include_waiting=True)) == 1
    assert g.take_due(T0 + 2, include_waiting=True) == []  # nothing new


def test_groups_survive_a_round_trip_through_json() -> None:
    g = Grouper(ROUTING)
    g.add("c", alert(dependencies={"db": {"calls": 3.0, "errors": 1.0}}), T0)
    told(g, 30)
    g.add("c", alert("other"), T0 + 40)
    changes = g.drain_changes()
    restored = Grouper(ROUTING, [Group.from_dict(json.loads(s)) for *_, s in changes.saved])
    assert told(restored, 40) == []  # already told, and the new group still waits
    assert [s.key for s in restored.take_due(T0 + 70)] == ["function:aws:eu-west-1/other"]
    assert changes.deleted == []
