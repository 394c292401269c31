"""Held plans: changes the fleet's caps held back, remembered so that holding them again costs no planning."""

from __future__ import annotations

from collections.abc import Iterable

from tuner.decisions.planning import group_key, plan_finding
from tuner.domain.decisions import Decision
from tuner.domain.holds import Hold
from tuner.domain.lifecycle import Verdict
from tuner.domain.model import Finding, FunctionConfig, FunctionRef, Limits, Mode, Target
from tuner.engine.rulefiles import CompiledRule


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
        cap: Hold,
        rules: dict[str, CompiledRule],
        targets: dict[FunctionRef, Target],
        global_mode: Mode,
    ) -> None:
        """Keep this cycle's findings whose every decision was a change held back by ``cap``.

        ``settled`` are the cycle's decisions as recorded (with their records' ids).
        """
        by_finding: dict[tuple[str, str], list[Decision]] = {}
        spoilt: set[tuple[str, str]] = set()
        for d in settled:
            key = (d.ref.key, d.rule)
            if d.change is None or d.verdict is not Verdict.SKIP or d.hold != cap:
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
