"""The ``trace`` action: its plan, its validation, its guard and how its decisions settle."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from tests.fakes import FakeClock, FakeProvider
from tuner.daemon.loop import Daemon, DaemonSettings
from tuner.decisions.guard import Budget, GuardPolicy, guard
from tuner.decisions.verifying import ENDED, VerifyPolicy, judge
from tuner.domain.decisions import Decision
from tuner.domain.errors import ConfigError
from tuner.domain.lifecycle import LIVE, TRANSITIONS, State, Verdict, is_final
from tuner.domain.model import (
    Change,
    FunctionConfig,
    FunctionRef,
    Knob,
    Lasting,
    Limits,
    Mode,
    Severity,
    WindowFacts,
)
from tuner.engine import load_rules, parse_rules
from tuner.engine.actions import Trace
from tuner.engine.rulefiles import rules_schema
from tuner.store.audit import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
T = 1_000.0
FAILING = {"invocations": 20.0, "ooms": 5.0, "oom_rate": 0.25, "error_rate": 0.25, "extra": {}}


def cfg(tracing: float | None = 0.0) -> FunctionConfig:
    return FunctionConfig(memory_mb=128, timeout_s=3.0, tracing=tracing)


@pytest.mark.parametrize(
    ("action", "config", "facts", "change", "summary"),
    [
        (
            Trace(invocations=3),
            cfg(),
            FAILING,
            Change(Knob.TRACING, 0.0, 1.0, Lasting(invocations=3)),
            "trace every invocation for the next 3 invocations, then back to its own setting",
        ),
        (
            Trace.model_validate({"for": "10m", "sample_rate": 0.5}),
            cfg(),
            FAILING,
            Change(Knob.TRACING, 0.0, 0.5, Lasting(seconds=600.0)),
            "trace 50% of the invocations for 10 min, then back to its own setting",
        ),
        (
            Trace(invocations=1),
            cfg(),
            FAILING,
            Change(Knob.TRACING, 0.0, 1.0, Lasting(invocations=1)),
            "trace every invocation for the next 1 invocation, then back to its own setting",
        ),
        # a lower share while a switch is on: it is raised further
        (
            Trace.model_validate({"for": 30}),
            cfg(0.2),
            FAILING,
            Change(Knob.TRACING, 0.2, 1.0, Lasting(seconds=30.0)),
            "trace every invocation for 30 s, then back to its own setting",
        ),
    ],
)
def test_plans(
    action: Trace, config: FunctionConfig, facts: dict[str, Any], change: Change, summary: str
) -> None:
    plan = action.plan(config, Limits(), facts)
    assert plan.applicable and plan.change == change and plan.summary == summary


@pytest.mark.parametrize(
    ("config", "facts", "reason"),
    [
        (cfg(None), FAILING, "this provider cannot switch tracing on"),
        (cfg(1.0), FAILING, "tracing is already on for a while (100% of the invocations)"),
        (
            cfg(),
            {**FAILING, "extra": {"traced_invocations": 20.0}},
            "every invocation is traced already",
        ),
    ],
)
def test_cannot_plan(config: FunctionConfig, facts: dict[str, Any], reason: str) -> None:
    plan = Trace(invocations=5).plan(config, Limits(), facts)
    assert plan.change is None and plan.reason == reason


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "invocations: 3\n        for: 10m\n",
            "rules/team.yaml:7: rule 'look': field 'actions.invocations': Value error, give exactly "
            "one of 'invocations' or 'for' (both were given)",
        ),
        (
            "sample_rate: 0.5\n",
            "rules/team.yaml:6: rule 'look': field 'actions.invocations': Value error, give exactly "
            "one of 'invocations' or 'for' (neither was given)",
        ),
        (
            "for: 0s\n",
            "rules/team.yaml:7: rule 'look': field 'actions.for': Value error, must be "
            "longer than 0 s",
        ),
        ("invocations: 0\n", "field 'actions.invocations': Input should be greater than or equal"),
        ("for: soon\n", "field 'actions.for': Value error, not a duration"),
        ("invocations: 3\n        sample_rate: 0\n", "field 'actions.sample_rate'"),
    ],
)
def test_bad_trace_actions_are_located(body: str, expected: str) -> None:
    text = (
        textwrap.dedent("""\
        rules:
          - name: look
            when: ooms > 0.0
            actions:
              - action: notify
              - action: trace
        """)
        + "        "
        + body
    )
    with pytest.raises(ConfigError) as err:
        parse_rules(text, "rules/team.yaml")
    found = [str(p) for p in err.value.problems]
    assert any(expected in p for p in found), found


def test_the_schema_wants_exactly_one_limit() -> None:
    schema = rules_schema()

    def rule(**action: Any) -> dict[str, Any]:
        return {
            "rules": [
                {"name": "t", "when": "ooms > 0.0", "actions": [{"action": "trace", **action}]}
            ]
        }

    jsonschema.validate(rule(invocations=3), schema)
    jsonschema.validate(rule(**{"for": "10m"}), schema)
    for bad in (rule(), rule(invocations=3, **{"for": "10m"})):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    with pytest.raises(ValidationError):
        Trace()


def trace_decision(mode: Mode = Mode.APPLY, **kw: Any) -> Decision:
    base = Decision(
        "t",
        T,
        FunctionRef("local", "f"),
        "trace-for-evidence",
        "trace",
        Severity.INFO,
        mode,
        facts=FAILING,
        change=Change(Knob.TRACING, 0.0, 1.0, Lasting(invocations=3)),
    )
    return Decision(**{**{f: getattr(base, f) for f in base.__slots__}, **kw})  # type: ignore[arg-type]


def test_the_guard_holds_trace_changes_like_any_other() -> None:
    [applied] = guard([trace_decision()], Budget.start([], {}, GuardPolicy(), T))
    assert applied.verdict is Verdict.APPLY
    [told] = guard([trace_decision(Mode.RECOMMEND)], Budget.start([], {}, GuardPolicy(), T))
    assert told.verdict is Verdict.RECOMMEND
    earlier = trace_decision(id="earlier", time=T - 60, state=State.EXPIRED)
    [cooling] = guard(
        [trace_decision()],
        Budget.start([earlier], {"trace-for-evidence": 3600.0}, GuardPolicy(), T),
    )
    assert cooling.verdict is Verdict.SKIP and cooling.why.startswith("cooldown: tracing")
    [capped] = guard(
        [trace_decision()],
        Budget.start([earlier], {}, GuardPolicy(max_changes_per_function_per_day=1), T),
    )
    assert capped.verdict is Verdict.SKIP and "per function per day" in capped.why


@pytest.mark.parametrize(
    ("live", "window", "state"),
    [
        # still on: wait, whatever the window shows (it is not a fix)
        (cfg(1.0), {"invocations": 20.0, "oom_rate": 0.9, "error_rate": 0.9}, None),
        (cfg(1.0), {"invocations": 20.0, "oom_rate": 0.0, "error_rate": 0.0}, None),
        # ended: expired, never improved, worse or rolled back
        (cfg(0.0), {"invocations": 20.0, "oom_rate": 0.9, "error_rate": 0.9}, State.EXPIRED),
        (cfg(0.0), {"invocations": 20.0, "oom_rate": 0.0, "error_rate": 0.0}, State.EXPIRED),
        (cfg(None), {}, State.EXPIRED),
    ],
)
def test_a_trace_decision_expires_and_is_never_judged(
    live: FunctionConfig, window: dict[str, Any], state: State | None
) -> None:
    decision = trace_decision(state=State.APPLIED)
    judged = judge(decision, window, T + 120, live, None, VerifyPolicy())
    assert judged.state is state and not judged.counted
    if state is not None:
        assert judged.reason == ENDED
        assert decision.advance(judged.state, judged.reason).applied


def test_expired_is_final_and_was_live() -> None:
    assert State.EXPIRED in TRANSITIONS[State.APPLIED] and is_final(State.EXPIRED)
    assert State.EXPIRED in LIVE
    assert [s for s, nxt in TRANSITIONS.items() if State.EXPIRED in nxt] == [State.APPLIED]


def test_a_change_describes_how_long_it_lasts() -> None:
    assert Change(Knob.TRACING, 0, 1.0, Lasting(invocations=20)).describe() == (
        "tracing 0 -> 1 for the next 20 invocations"
    )
    assert Change(Knob.TRACING, 0, 0.5, Lasting(seconds=90)).describe() == (
        "tracing 0 -> 0.5 for 90 s"
    )


def _bundled(provider_name: str) -> tuple[Daemon, FakeProvider, FakeClock]:
    provider = FakeProvider(name=provider_name)
    provider.add("renderer", FunctionConfig(memory_mb=128, timeout_s=3.0, tracing=0.0))
    clock = FakeClock()
    daemon = Daemon(
        providers=[provider],
        rules=load_rules([ROOT / "rules" / "default.yaml"]),
        store=SqliteStore(":memory:"),
        clock=clock,
        settings=DaemonSettings(window_s=60.0),
    )
    return daemon, provider, clock


def _oom_window_for(provider: FakeProvider, name: str, **extra: float) -> None:
    provider.windows[name] = WindowFacts(
        provider.ref(name),
        0,
        0,
        invocations=20,
        errors=20,
        ooms=20,
        peak_memory_mb=None,
        extra=extra,
    )


def _oom_window(provider: FakeProvider, **extra: float) -> None:
    _oom_window_for(provider, "renderer", **extra)


def test_the_bundled_rule_traces_a_function_failing_for_two_windows_without_traces() -> None:
    daemon, provider, clock = _bundled("local")
    _oom_window(provider)
    first = daemon.run_cycle().decisions
    assert [d.rule for d in first] == ["oom"]  # the memory rule acts; one window is no pattern
    clock.advance(60)
    second = daemon.run_cycle().decisions
    [traced] = [d for d in second if d.rule == "trace-for-evidence"]
    assert traced.state is State.APPLIED
    assert traced.change == Change(Knob.TRACING, 0.0, 1.0, Lasting(invocations=20))
    assert provider.configs["renderer"].tracing == 1.0
    clock.advance(60)
    _oom_window(provider, traced_invocations=20.0)  # the evidence came
    third = daemon.run_cycle()
    assert [d.action for d in third.decisions if d.rule == "trace-for-evidence"] == ["resolved"]
    assert not third.verified  # still on
    provider.configs["renderer"] = replace(provider.configs["renderer"], tracing=0.0)
    clock.advance(60)
    [expired] = daemon.run_cycle().verified
    assert expired.id == traced.id and expired.state is State.EXPIRED


@pytest.mark.parametrize("provider_name", ["aws", "local"])
def test_the_bundled_rule_stays_quiet_with_traces_or_where_nothing_traces(
    provider_name: str,
) -> None:
    daemon, provider, clock = _bundled(provider_name)
    for _ in range(3):
        _oom_window(provider, **({"traced_invocations": 2.0} if provider_name == "local" else {}))
        decisions = daemon.run_cycle().decisions
        assert not [d for d in decisions if d.rule == "trace-for-evidence"]
        clock.advance(60)


def test_a_provider_that_cannot_trace_says_so() -> None:
    provider = FakeProvider()  # like aws, kubernetes and sim: no tracing knob
    provider.add("resize", FunctionConfig(memory_mb=128, timeout_s=3.0))
    _oom_window_for(provider, "resize")
    rules = parse_rules(
        textwrap.dedent("""\
        rules:
          - name: look
            when: ooms > 0.0
            actions:
              - action: trace
                for: 10m
        """),
        "look.yaml",
    )
    daemon = Daemon(
        providers=[provider],
        rules=rules,
        store=SqliteStore(":memory:"),
        clock=FakeClock(),
        settings=DaemonSettings(window_s=60.0),
    )
    [told] = daemon.run_cycle().decisions
    assert told.state is State.NOTIFIED and told.change is None
    assert "trace: this provider cannot switch tracing on" in told.summary
    assert not provider.applied


def test_the_simulator_refuses_the_tracing_knob() -> None:
    from tuner.domain.errors import ProviderError
    from tuner.providers.sim import Settings, build

    sim = build(Settings(functions=2), clock=FakeClock())
    target = sim.targets()[0]
    assert target.config.tracing is None
    with pytest.raises(ProviderError, match="the simulator has no tracing setting"):
        sim.apply(target, [Change(Knob.TRACING, 0.0, 1.0, Lasting(invocations=3))])
