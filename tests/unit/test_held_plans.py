"""Changes the fleet's caps hold back are held again without planning, and planned afresh once there is room."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tests.fakes import FakeClock
from tests.unit.test_repeated_decisions import RULES, daemon, fleet, oom_rows
from tuner.decisions.guard import GuardPolicy
from tuner.decisions.held import HeldPlans
from tuner.decisions.planning import plan_finding
from tuner.domain import model
from tuner.domain.decisions import Decision
from tuner.domain.holds import Hold, HoldKind
from tuner.domain.lifecycle import State, Verdict
from tuner.domain.model import FunctionConfig, FunctionRef, Mode, Severity
from tuner.engine import load_rules
from tuner.store.audit import SqliteStore

A = FunctionRef("fake", "a")


def traced(peak_mb: float) -> model.WindowFacts:
    """An OOM window whose trace says how much memory the work needs."""
    return model.WindowFacts(
        A,
        0,
        0,
        invocations=20,
        errors=6,
        ooms=6,
        timeouts=0,
        peak_memory_mb=128.0,
        extra={"traced_peak_memory_mb": peak_mb},
    )


def said(d: Decision) -> tuple[object, ...]:
    """What a decision says to a person and to the record (not its id, time or facts)."""
    return (
        d.ref,
        d.rule,
        d.action,
        d.severity,
        d.mode,
        d.state,
        d.verdict,
        d.why,
        d.change,
        d.summary,
        d.advice,
        d.channels,
        d.group,
    )


def oom_decisions(decisions: Sequence[Decision]) -> list[Decision]:
    return [d for d in decisions if d.action == "more-memory"]


def test_a_held_change_says_what_planning_it_in_full_says() -> None:
    clock, provider = FakeClock(), fleet("a", "b")
    held_loop = daemon(provider, SqliteStore(":memory:"), clock)
    clock.advance(60)
    first = oom_decisions(held_loop.run_cycle().decisions)  # planned in full: nothing held yet
    clock.advance(60)
    again = oom_decisions(held_loop.run_cycle().decisions)  # held again from the first cycle's plan
    fresh = oom_decisions(daemon(provider, SqliteStore(":memory:"), clock).run_cycle().decisions)
    assert len(first) == 2 and all(d.state is State.SKIPPED and "cap:" in d.why for d in first)
    assert [said(d) for d in again] == [said(d) for d in first] == [said(d) for d in fresh]
    assert [(d.id, d.seen) for d in again] == [(d.id, 2) for d in first]  # one record each
    assert len(held_loop._held) == 2  # noqa: SLF001 - both findings are remembered as held


def test_held_changes_keep_their_plan_until_the_caps_have_room_then_fresh_facts_size_them() -> None:
    clock, provider = FakeClock(), fleet("a")
    provider.windows["a"] = traced(300.0)
    loop = daemon(provider, SqliteStore(":memory:"), clock)
    clock.advance(60)
    [first] = oom_decisions(loop.run_cycle().decisions)
    assert first.change is not None and first.state is State.SKIPPED
    provider.windows["a"] = traced(900.0)  # new evidence: the work needs far more
    clock.advance(60)
    [held] = oom_decisions(loop.run_cycle().decisions)
    assert held.change == first.change and held.summary == first.summary  # held as planned
    assert held.facts["traced_peak_memory_mb"] == 900.0  # this window's facts
    loop.settings = replace(loop.settings, guard_policy=GuardPolicy())  # room: fresh facts
    clock.advance(60)
    [applied] = oom_decisions(loop.run_cycle().decisions)
    assert applied.state is State.APPLIED and applied.change is not None
    assert applied.change.after > first.change.after
    assert provider.configs["a"].memory_mb == applied.change.after


def test_a_changed_configuration_or_rule_is_planned_again() -> None:
    clock, provider = FakeClock(), fleet("a")
    loop = daemon(provider, SqliteStore(":memory:"), clock)
    clock.advance(60)
    [first] = oom_decisions(loop.run_cycle().decisions)
    assert first.change is not None and first.change.before == 128
    provider.configs["a"] = FunctionConfig(memory_mb=192, timeout_s=3.0)  # a person raised it
    clock.advance(60)
    [again] = oom_decisions(loop.run_cycle().decisions)
    assert again.change is not None and again.change.before == 192
    assert again.change.after != first.change.after
    loop._rules = load_rules([RULES])  # noqa: SLF001 - reloaded rules: other compiled rules
    clock.advance(60)
    [reloaded] = oom_decisions(loop.run_cycle().decisions)
    assert reloaded.change == again.change and reloaded.state is State.SKIPPED


def test_a_repeated_held_change_stays_one_record() -> None:
    clock, provider = FakeClock(), fleet("a")
    store = SqliteStore(":memory:")
    loop = daemon(provider, store, clock)
    for _ in range(4):
        clock.advance(60)
        loop.run_cycle()
    [row] = oom_rows(store)
    assert row.seen == 4 and row.state is State.SKIPPED


class _Spy(HeldPlans):
    """Held plans that note, for each finding, whether the caps were full when it was planned."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, bool]] = []

    def plan(self, compiled, finding, target, global_mode, now, capped):  # type: ignore[no-untyped-def]
        self.calls.append((finding.ref.name, capped))
        return super().plan(compiled, finding, target, global_mode, now, capped)


def test_findings_are_planned_in_the_guards_order_knowing_if_the_caps_are_full() -> None:
    clock, provider = FakeClock(), fleet("late", "first", "second")
    for name, errors in (("late", 2), ("first", 9), ("second", 5)):  # most failing first
        provider.windows[name] = replace(provider.windows[name], errors=errors, ooms=errors)
    loop = daemon(
        provider, SqliteStore(":memory:"), clock, guard_policy=GuardPolicy(max_changes_per_cycle=1)
    )
    spy = loop._held = _Spy()  # noqa: SLF001 - the plan step's calls are what is tested
    clock.advance(60)
    out = loop.run_cycle().decisions
    assert spy.calls == [("first", False), ("second", True), ("late", True)]
    assert [(d.ref.name, d.verdict) for d in oom_decisions(out)] == [
        ("first", Verdict.APPLY),
        ("second", Verdict.SKIP),
        ("late", Verdict.SKIP),
    ]
    spy.calls.clear()
    clock.advance(60)  # "first" is in its cooldown now: the one change of this cycle is "second"'s
    loop.run_cycle()
    assert spy.calls == [("first", False), ("second", False), ("late", True)]


def test_held_plans_keep_only_findings_whose_every_change_waited_for_the_fleet_cap() -> None:
    rules = load_rules([RULES])
    compiled = {r.name: r for r in rules.rules}
    targets = {A: model.Target(A, FunctionConfig(memory_mb=128, timeout_s=3.0))}
    d = Decision(
        id="1",
        time=0.0,
        ref=A,
        rule="oom",
        action="more-memory",
        severity=Severity.CRITICAL,
        mode=Mode.APPLY,
    )
    held = HeldPlans()
    cap = GuardPolicy().fleet_cap
    held.remember([d.with_verdict(Verdict.NOTIFY)], cap, compiled, targets, Mode.APPLY)
    assert len(held) == 0  # no change: nothing held
    planned = plan_finding(
        compiled["oom"],
        model.Finding(A, "oom", Severity.CRITICAL, {}, 0.0),
        targets[A],
        Mode.APPLY,
        0.0,
    )
    capped = [p.with_verdict(Verdict.SKIP, hold=cap) for p in planned]
    held.remember(capped, cap, compiled, targets, Mode.APPLY)
    assert len(held) == 1
    held.remember(
        [*capped, capped[0].with_verdict(Verdict.SKIP, hold=Hold(HoldKind.COOLDOWN))],
        cap,
        compiled,
        targets,
        Mode.APPLY,
    )
    assert len(held) == 0  # one of its changes waited for something else
