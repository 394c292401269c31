"""The fleet state mapping and the live state's bounded history, without a server."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tuner.daemon.live import CHART_FACTS, LiveState
from tuner.daemon.reports import CycleReport
from tuner.domain.decisions import Decision, Kind
from tuner.domain.lifecycle import State
from tuner.domain.model import Change, FunctionConfig, FunctionRef, Knob, Mode, Severity, Target
from tuner.web.fleet import fleet_state

NOW = 1_000_000.0
REF = FunctionRef("fake", "f")
HEALTHY = {"invocations": 10.0, "dependency_error_rate": None}


def _decision(
    state: State,
    age: float = 60.0,
    undoes: str = "",
    change: bool = True,
    action: str = "more-memory",
) -> Decision:
    return Decision(
        id="d",
        time=NOW - age,
        ref=REF,
        rule="oom",
        action=action,
        severity=Severity.CRITICAL,
        mode=Mode.APPLY,
        state=state,
        change=Change(Knob.MEMORY_MB, 128, 256) if change else None,
        undoes=undoes,
        kind=Kind.ROLLBACK if undoes else Kind.RESOLVED if action == "resolved" else Kind.FINDING,
    )


@pytest.mark.parametrize(
    ("facts", "findings", "last", "change", "state"),
    [
        (HEALTHY, (), None, None, "healthy"),
        (None, (), None, None, "no data"),
        ({"invocations": 0.0}, (), None, None, "no data"),
        (HEALTHY, ("oom",), None, None, "watched"),
        (HEALTHY, (), _decision(State.RECOMMENDED, change=True), None, "watched"),
        (HEALTHY, (), _decision(State.NOTIFIED, action="resolved", change=False), None, "healthy"),
        (HEALTHY, (), None, _decision(State.APPLIED), "verifying"),
        (None, (), None, _decision(State.APPLIED), "verifying"),
        (HEALTHY, (), None, _decision(State.IMPROVED), "changed"),
        (HEALTHY, (), None, _decision(State.IMPROVED, age=2 * 86_400), "healthy"),
        (HEALTHY, (), None, _decision(State.ROLLED_BACK), "rolled back"),
        (HEALTHY, (), None, _decision(State.FAILED), "healthy"),
        (
            {"invocations": 10.0, "dependency_error_rate": 0.9},
            ("dependency-down",),
            None,
            None,
            "outage",
        ),
        (
            {"invocations": 10.0, "dependency_error_rate": 0.9},
            (),
            None,
            _decision(State.IMPROVED),
            "outage",
        ),
    ],
)
def test_fleet_state(
    facts: Any, findings: tuple[str, ...], last: Any, change: Any, state: str
) -> None:
    assert fleet_state(facts, findings, last, change, None, NOW) == state


def _observe(state: LiveState, names: list[str], t: float, **facts: float) -> None:
    for name in names:
        target = Target(FunctionRef("fake", name), FunctionConfig(memory_mb=128))
        state.function_observed(target, {"invocations": 5.0, **facts}, [], t)
    state.cycle_finished(CycleReport(started=t, finished=t + 0.1), rules=None)  # type: ignore[arg-type]


def test_history_is_a_bounded_ring_oldest_first() -> None:
    state = LiveState(60.0, slots=3)
    for i in range(5):
        _observe(state, ["a"], NOW + 60 * i, peak_memory_mb=float(i))
    history = state.history("fake:a")
    assert history["time"] == [NOW + 120, NOW + 180, NOW + 240]
    assert history["peak_memory_mb"] == [2.0, 3.0, 4.0]
    assert history["duration_p95_ms"] == [None, None, None]
    assert set(history) == {"time", *CHART_FACTS}


def test_a_function_missing_from_a_cycle_has_a_gap_and_a_gone_one_is_forgotten() -> None:
    state = LiveState(60.0, slots=4)
    _observe(state, ["a", "b"], NOW, peak_memory_mb=1.0)
    report = CycleReport(started=NOW + 60, finished=NOW + 60.1, errors=["fake: down"])
    state.cycle_finished(report, rules=None)  # type: ignore[arg-type]
    assert [v.key for v in state.functions()] == ["fake:a", "fake:b"]  # the provider failed: kept
    assert state.history("fake:a")["peak_memory_mb"] == [1.0, None]
    _observe(state, ["a"], NOW + 120, peak_memory_mb=2.0)
    assert [v.key for v in state.functions()] == ["fake:a"]
    assert state.history("fake:b")["peak_memory_mb"] == [None, None, None]
    assert state.function("a") is not None and state.function("b") is None


def test_an_early_cycle_updates_its_functions_and_keeps_the_others_and_the_chart() -> None:
    state = LiveState(60.0, slots=4)
    _observe(state, ["a", "b"], NOW, peak_memory_mb=1.0)
    target = Target(FunctionRef("fake", "b"), FunctionConfig(memory_mb=256))
    state.function_observed(target, {"invocations": 3.0, "peak_memory_mb": 9.0}, [], NOW + 10)
    report = CycleReport(started=NOW + 10, finished=NOW + 10.1, early=True)
    state.cycle_finished(report, rules=None)  # type: ignore[arg-type]
    assert [v.key for v in state.functions()] == ["fake:a", "fake:b"]
    b = state.function("b")
    assert b is not None and b.target.config.memory_mb == 256
    assert state.history("fake:a")["peak_memory_mb"] == [1.0]  # no point of its own
    _observe(state, ["a", "b"], NOW + 60, peak_memory_mb=2.0)
    assert state.history("fake:b")["peak_memory_mb"] == [1.0, 2.0]


def test_decisions_keep_the_latest_change_and_its_verdict() -> None:
    state = LiveState(60.0)
    change = _decision(State.APPLIED)
    state.add_decisions(
        [change, replace(change, id="n", time=NOW, state=State.OBSERVED, change=None)]
    )
    state.add_decisions([replace(change, state=State.IMPROVED)])
    last, latest_change, recent = state.decisions_of("fake:f")
    assert last is not None and last.id == "n"
    assert latest_change is not None and latest_change.state is State.IMPROVED
    assert [d.id for d in recent] == ["n", "d"]


def test_ready_needs_rules_and_a_recent_cycle() -> None:
    state = LiveState(10.0)
    assert state.ready(NOW) == (False, "no rules loaded yet")
    from tuner.engine.rulefiles import RuleBase

    state.set_rules(RuleBase(rules=()))
    assert state.ready(NOW)[0] is False
    state.last_finished = NOW - 29
    assert state.ready(NOW)[0] is True
    assert state.ready(NOW + 2)[0] is False
