"""Planning: turn a finding into decisions with concrete changes and constructive advice.

Pure: it reads the rule, the target and the facts, and writes nothing.  It settles each
decision's mode (the stricter of the global mode and the rule's own) once; the guard
decides afterwards what may actually happen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tuner.decisions.advice import for_finding
from tuner.domain.decisions import Decision, Kind
from tuner.domain.holds import Hold, HoldKind
from tuner.domain.lifecycle import State, Verdict
from tuner.domain.model import (
    Change,
    FactValue,
    Finding,
    FunctionRef,
    Mode,
    Severity,
    Target,
    new_id,
)
from tuner.engine.actions import Plan
from tuner.engine.rulefiles import CompiledRule

RESOLVED_ACTION = "resolved"
"""The action of a decision that says a rule's condition no longer holds."""
TELEMETRY_RULE = "telemetry"
"""The rule name of a window set aside as untrue."""
DEPENDENCY_GROUP = "dependency:"
"""Prefix of the group key of findings about one dependency."""
FUNCTION_GROUP = "function:"
"""Prefix of the group key of findings about one function."""


def effective_mode(global_mode: Mode, rule_mode: Mode | None) -> Mode:
    """The stricter of the global mode and the rule's own: a rule can only hold back more."""
    return global_mode.stricter(rule_mode)


def function_group(ref: FunctionRef) -> str:
    """The group key of findings about one function (the default grouping)."""
    return f"{FUNCTION_GROUP}{ref.key}"


def group_key(compiled: CompiledRule, finding: Finding) -> str:
    """The notification group of a finding, by the rule's ``group_by``."""
    by = compiled.rule.group_by
    if by == "dependency":
        dep = finding.facts.get("worst_dependency")
        if dep:
            return f"{DEPENDENCY_GROUP}{dep}"
    if by == "rule":
        return f"rule:{compiled.name}"
    return function_group(finding.ref)


def plan_finding(
    compiled: CompiledRule, finding: Finding, target: Target, global_mode: Mode, now: float
) -> list[Decision]:
    """Decisions for one finding: one per action that can apply (or the first, by ``choose``).

    When no action can apply, a single notify decision says why, so people hear about it.
    """
    rule = compiled.rule
    plans: list[tuple[str, Plan]] = []
    reasons: list[str] = []
    for action in rule.actions:
        plan = action.plan(target.config, target.limits, finding.facts)
        if not plan.applicable:
            reasons.append(f"{action.action}: {plan.reason}")
            continue
        plans.append((action.action, plan))
        if rule.choose == "first" and plan.change is not None:
            break
    stuck = not plans
    if stuck:
        plans.append(("notify", Plan(None, f"no automatic fix applies ({'; '.join(reasons)})")))
    return [
        _decision(compiled, finding, target, action, plan, global_mode, now, stuck)
        for action, plan in plans
    ]


def _decision(
    compiled: CompiledRule,
    finding: Finding,
    target: Target,
    action: str,
    plan: Plan,
    global_mode: Mode,
    now: float,
    stuck: bool,
) -> Decision:
    rule = compiled.rule
    extra = for_finding(
        finding.facts,
        plan.change,
        target.config,
        target.limits,
        global_mode,
        rule.mode,
        stuck=stuck,
    )
    head = rule.description or rule.name
    return Decision(
        id=new_id(),
        time=now,
        ref=finding.ref,
        rule=rule.name,
        action=action,
        severity=rule.severity,
        mode=effective_mode(global_mode, rule.mode),
        facts=finding.facts,
        change=plan.change,
        summary=f"{head}: {plan.summary}" if plan.summary else head,
        advice=" ".join([rule.advice, *extra]).strip(),
        channels=tuple(rule.notify),
        group=group_key(compiled, finding),
    )


def replan(compiled: CompiledRule | None, decision: Decision, fresh: Target) -> Change | None:
    """After a conflict: the decision's change planned again from the fresh configuration.

    None when nothing is left to do: an outside change already moved the knob as far as
    intended or further, the rule's action proposes nothing now, or it would move the knob
    against the direction the decision intended.  A rollback is never re-planned: the knob
    moved since tuner's change, so a person moved it, and tuner leaves it.
    """
    change = decision.change
    if change is None or compiled is None or decision.kind is Kind.ROLLBACK:
        return None
    direction = change.direction
    value = fresh.config.get(change.knob)
    if (
        value is not None
        and direction
        and Change(change.knob, value, change.after).direction != direction
    ):
        return None  # already there, or beyond
    action = next((a for a in compiled.rule.actions if a.action == decision.action), None)
    if action is None:
        return None
    new = action.plan(fresh.config, fresh.limits, decision.facts).change
    if new is None or new.knob is not change.knob:
        return None
    if direction and new.direction != direction:
        return None
    return new


def resolved_decision(
    compiled: CompiledRule | None,
    ref: FunctionRef,
    facts: Mapping[str, FactValue],
    mode: Mode,
    now: float,
) -> Decision:
    """The decision that a rule's condition no longer holds for a function: people are told."""
    rule = compiled.rule if compiled is not None else None
    name = compiled.name if compiled is not None else "?"
    return Decision(
        id=new_id(),
        time=now,
        ref=ref,
        rule=name,
        action=RESOLVED_ACTION,
        severity=rule.severity if rule else Severity.INFO,
        mode=mode,
        facts=facts,
        summary=f"{name}: resolved, the condition no longer holds",
        channels=tuple(rule.notify) if rule else (),
        group=function_group(ref),
        kind=Kind.RESOLVED,
    ).with_verdict(Verdict.NOTIFY)


def telemetry_decision(ref: FunctionRef, why: str, mode: Mode, now: float) -> Decision:
    """The record of a window that cannot be true: set aside, the function treated as without data."""
    return Decision(
        id=new_id(),
        time=now,
        ref=ref,
        rule=TELEMETRY_RULE,
        action="ignore-window",
        severity=Severity.WARNING,
        mode=mode,
        summary=f"bad telemetry: {why}",
        group=function_group(ref),
        kind=Kind.TELEMETRY,
    ).with_verdict(Verdict.SKIP, hold=Hold(HoldKind.BAD_TELEMETRY, detail=why))


def superseded(new: Decision, older: Iterable[Decision]) -> list[Decision]:
    """The older live recommendations for the same function and knob, superseded by ``new``.

    One recommendation per function and knob is live: approving an older one, whose size
    rests on older facts, would apply a change nobody recommends any more.
    """
    if new.state is not State.RECOMMENDED or new.change is None:
        return []
    knob = new.change.knob
    return [
        d.advance(State.SUPERSEDED, f"superseded by a newer recommendation ({new.id})")
        for d in older
        if d.id != new.id
        and d.ref == new.ref
        and d.state is State.RECOMMENDED
        and d.change is not None
        and d.change.knob is knob
    ]
