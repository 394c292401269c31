"""Planning: turn a finding into decisions with concrete changes and constructive advice.

Pure: it reads the rule, the target and the facts, and writes nothing.  It settles each
decision's mode (the stricter of the global mode and the rule's own) once; the guard
decides afterwards what may actually happen.
"""

from __future__ import annotations

from collections.abc import Iterable

from tuner.decisions.advice import for_finding
from tuner.domain.lifecycle import Verdict
from tuner.domain.model import (
    Change,
    Decision,
    Finding,
    FunctionConfig,
    FunctionRef,
    Limits,
    Mode,
    Target,
    new_id,
)
from tuner.engine.actions import Plan
from tuner.engine.rulefiles import CompiledRule

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
    if change is None or compiled is None or decision.undoes:
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


class HeldPlans:
    """Changes the fleet's caps held back, remembered so that holding them again costs no planning.

    A fleet with many functions to fix plans far more changes in a cycle than the guard's
    caps let through; the rest are held back, cycle after cycle, until the caps have room.
    While the caps are full, a finding whose decisions the previous cycle held back for the
    fleet's cap, for the same rule and the same configuration, is given those decisions
    again (the same actions, changes, summaries and advice; this window's facts) instead of
    being planned: they are held back again, as they would be if planned afresh.  Once the
    caps have room, or anything else changed, the finding is planned in full from fresh facts.

    It remembers the decisions as the cycle recorded them, so a decision held again comes
    as the next count of the same record (its id, ``seen`` one more, ``last_seen`` now):
    the record of the cycle (:mod:`tuner.decisions.repeats`) finds it a repeat without copying it,
    and gives it a new id if the guard says something else this time.  The memory holds
    one cycle's held decisions (and their facts, until the next cycle replaces them).
    """

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], _Held] = {}

    def __len__(self) -> int:
        """How many findings' decisions are remembered."""
        return len(self._held)

    def plan(
        self,
        compiled: CompiledRule,
        finding: Finding,
        target: Target,
        global_mode: Mode,
        now: float,
        capped: bool,
    ) -> list[Decision]:
        """The finding's decisions: those held before when ``capped`` and nothing changed, or planned.

        Decisions held before come as they were recorded (held back for the fleet's cap),
        counted once more, with this finding's facts; the guard confirms or changes them.
        """
        held = self._held.get((finding.ref.key, compiled.name)) if capped else None
        if (
            held is not None
            and held.compiled is compiled
            and held.mode is global_mode
            and held.config == target.config
            and held.limits == target.limits
        ):
            group, facts = group_key(compiled, finding), finding.facts
            return [
                d.replaced(time=now, facts=facts, group=group, seen=d.seen + 1, last_seen=now)
                for d in held.decisions
            ]
        return plan_finding(compiled, finding, target, global_mode, now)

    def remember(
        self,
        settled: Iterable[Decision],
        cap: str,
        rules: dict[str, CompiledRule],
        targets: dict[FunctionRef, Target],
        global_mode: Mode,
    ) -> None:
        """Keep this cycle's findings whose every decision was a change held back for ``cap``.

        ``settled`` are the cycle's decisions as recorded (with their records' ids).
        """
        by_finding: dict[tuple[str, str], list[Decision]] = {}
        spoilt: set[tuple[str, str]] = set()
        for d in settled:
            key = (d.ref.key, d.rule)
            if d.change is None or d.verdict is not Verdict.SKIP or d.reason != cap:
                spoilt.add(key)
            elif key not in spoilt:
                by_finding.setdefault(key, []).append(d)
        held: dict[tuple[str, str], _Held] = {}
        for key, decisions in by_finding.items():
            compiled, target = rules.get(key[1]), targets.get(decisions[0].ref)
            if key in spoilt or compiled is None or target is None:
                continue
            held[key] = _Held(compiled, global_mode, target.config, target.limits, decisions)
        self._held = held


class _Held:
    """One finding's decisions held back for the fleet's cap, and what they were planned from."""

    __slots__ = ("compiled", "config", "decisions", "limits", "mode")

    def __init__(
        self,
        compiled: CompiledRule,
        mode: Mode,
        config: FunctionConfig,
        limits: Limits,
        decisions: list[Decision],
    ):
        self.compiled, self.mode, self.config, self.limits = compiled, mode, config, limits
        self.decisions = decisions
