"""Planning: turn a finding into decisions with concrete changes and constructive advice.

Pure: it reads the rule, the target and the facts, and writes nothing.  The guard decides
afterwards what may actually happen.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from tuner.actions import Plan
from tuner.engine.rulefiles import CompiledRule
from tuner.engine.traced import traced_advice
from tuner.model import Decision, Finding, Mode, Outcome, Target


def effective_mode(global_mode: Mode, rule_mode: Mode | None) -> Mode:
    """The stricter of the global mode and the rule's own: a rule can only hold back more."""
    if rule_mode is None or global_mode.rank <= rule_mode.rank:
        return global_mode
    return rule_mode


def group_key(compiled: CompiledRule, finding: Finding) -> str:
    """The notification group of a finding, by the rule's ``group_by``."""
    by = compiled.rule.group_by
    if by == "dependency":
        dep = finding.facts.get("worst_dependency")
        if dep:
            return f"dependency:{dep}"
    if by == "rule":
        return f"rule:{compiled.name}"
    return f"function:{finding.ref.key}"


def proposals(facts: Mapping[str, Any], plan: Plan | None) -> list[str]:
    """Suggestions drawn from the data, beyond what the rule's author wrote."""
    out: list[str] = []
    dep = facts.get("worst_dependency")
    failing = facts.get("dependency_failing_functions") or 0.0
    if dep and failing >= 2:
        out.append(
            f"'{dep}' failed for {failing:.0f} functions at once: the problem is the dependency, "
            "not the functions."
        )
    if (facts.get("ooms") or 0) > 0 and plan is not None and not plan.applicable:
        out.append(
            "Memory cannot grow further: split the work map-reduce style (fan-out), or move "
            "large private state out of the function."
        )
    if (
        (facts.get("timeouts") or 0) > 0
        and facts.get("batch_size") is None
        and facts.get("fan_out") is None
    ):
        out.append(
            "The function has no batch or fan-out knob: consider decomposing it (smaller "
            "batches, map-reduce fan-out, or a continuation that hands its state over)."
        )
    latency = facts.get("dependency_latency_p95_ms")
    if latency and facts.get("cache_enabled") and latency > 200:
        out.append(
            f"Dependency latency stays at {latency:.0f} ms with the cache on: move the data "
            "closer (a copy near the function, or an edge location)."
        )
    out.extend(traced_advice(facts))
    return out


def plan_finding(
    compiled: CompiledRule, finding: Finding, target: Target, global_mode: Mode, now: float
) -> list[Decision]:
    """Decisions for one finding: one per action that can apply (or the first, by ``choose``).

    When no action can apply, a single notify decision says why, so people hear about it.
    """
    rule = compiled.rule
    mode = effective_mode(global_mode, rule.mode)
    group = group_key(compiled, finding)
    decisions: list[Decision] = []
    reasons: list[str] = []
    last_plan: Plan | None = None
    for action in rule.actions:
        plan = action.plan(target.config, target.limits, finding.facts)
        last_plan = plan
        if not plan.applicable:
            reasons.append(f"{action.action}: {plan.reason}")
            continue
        decisions.append(
            _decision(
                compiled,
                finding,
                action.action,
                mode,
                plan,
                group,
                now,
                proposals(finding.facts, plan),
            )
        )
        if rule.choose == "first" and plan.change is not None:
            break
    if not decisions:
        why = "; ".join(reasons)
        plan = Plan(None, f"no automatic fix applies ({why})")
        advice = proposals(finding.facts, last_plan)
        decisions.append(_decision(compiled, finding, "notify", mode, plan, group, now, advice))
    return decisions


def _decision(
    compiled: CompiledRule,
    finding: Finding,
    action: str,
    mode: Mode,
    plan: Plan,
    group: str,
    now: float,
    extra_advice: list[str],
) -> Decision:
    rule = compiled.rule
    advice = " ".join([rule.advice, *extra_advice]).strip()
    head = rule.description or rule.name
    return Decision(
        id=uuid.uuid4().hex,
        time=now,
        ref=finding.ref,
        rule=rule.name,
        action=action,
        severity=rule.severity,
        mode=mode,
        outcome=Outcome.OBSERVED,
        facts=finding.facts,
        change=plan.change,
        summary=f"{head}: {plan.summary}" if plan.summary else head,
        advice=advice,
        channels=tuple(rule.notify),
        group=group,
    )
