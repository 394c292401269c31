"""The verify step: each change waiting for its verdict is judged by this cycle's window.

:func:`tuner.decisions.verifying.judge` holds the policy; this step records what it says,
through the applier (the only part that settles an applied change): a window counted, a
verdict that keeps the change (promoted first where the provider tried it on a share of
the traffic), or a rollback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tuner.daemon.applying import Applier
from tuner.daemon.cycle import CycleState
from tuner.decisions.verifying import GONE, VerifyPolicy, judge
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.model import FunctionRef, Target
from tuner.domain.ports import DecisionStore, Provider
from tuner.engine import RuleBase


@dataclass
class Judging:
    """Judges applied changes from this cycle's windows and records the verdicts."""

    store: DecisionStore
    applier: Applier
    policy: VerifyPolicy

    def verify(self, cycle: CycleState, pending: Mapping[FunctionRef, list[Decision]]) -> None:
        """Judge each pending change of a function seen with facts, or gone from its provider."""
        report = cycle.report
        seen = cycle.by_ref()
        for ref, decisions in pending.items():
            observed = seen.get(ref)
            if observed is None:
                if ref.provider in cycle.listed:  # its provider answered without it: gone
                    for d in decisions:
                        gone = self.applier.judged(d, State.UNCHANGED, GONE, None)
                        report.verified.append(gone)
                        cycle.writes.append(gone)
                continue
            if observed.facts is None:
                continue  # no facts this cycle (its step failed): judged with the next window
            for d in decisions:
                report.verified.extend(
                    self._one(d, observed.facts, cycle, observed.provider, observed.target)
                )

    def _one(
        self,
        decision: Decision,
        facts: Mapping[str, Any],
        cycle: CycleState,
        provider: Provider,
        target: Target,
    ) -> list[Decision]:
        """Judge one change; return what to report (the change once judged, a failed rollback)."""
        judgement = judge(
            decision,
            facts,
            cycle.start,
            target.config,
            _condition(cycle.rules, decision.rule),
            self.policy,
        )
        if judgement.counted:
            decision = decision.replaced(judged_windows=decision.judged_windows + 1)
        if judgement.state is None:
            if judgement.counted:
                cycle.writes.append(decision)
            return []
        if not judgement.rollback:
            judged = self.applier.judged(decision, judgement.state, judgement.reason, provider)
            if judged.state is State.APPLIED:
                return []  # a trial not yet promoted: judged again with the next window
            cycle.writes.append(judged)
            return [judged]
        self.store.record(decision)  # its windows counted, before the rollback is applied
        undo = self.applier.rollback(decision, judgement.reason, facts, provider, target)
        if undo.state is not State.APPLIED:
            return [undo]  # the rollback failed: the change is judged again next window
        return [d for d in [self.store.get(decision.id)] if d is not None]


def _condition(rules: RuleBase, name: str) -> Any:
    compiled = rules.by_name(name)
    return compiled.condition if compiled else None
