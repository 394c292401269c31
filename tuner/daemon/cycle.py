"""One cycle's state: what each step of the loop reads and writes, in one place.

:class:`CycleState` is made at the start of a cycle and dropped at its end; each step of
:meth:`tuner.daemon.loop.Daemon.run_cycle` fills in its part, in the order of
:data:`tuner.daemon.reports.STEPS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tuner.daemon.reports import CycleReport
from tuner.decisions.guard import Budget, urgency
from tuner.domain.decisions import Decision
from tuner.domain.model import Finding, FunctionRef, Target, WindowFacts
from tuner.domain.ports import Provider
from tuner.engine import RuleBase
from tuner.engine.rulefiles import CompiledRule


@dataclass
class Observed:
    """One function as this cycle saw it: its provider, target, window and facts."""

    provider: Provider
    target: Target
    window: WindowFacts | None
    """None: no data (none reported, out of range, or a window that cannot be true)."""
    facts: dict[str, Any] | None = None
    """Set by the facts step; None when they could not be built."""


@dataclass
class ToPlan:
    """A finding to plan, with its rule and target."""

    compiled: CompiledRule
    finding: Finding
    target: Target

    @property
    def urgency(self) -> tuple[int, float]:
        """Its place in the guard's order (most severe, then most failing, first)."""
        return urgency(self.compiled.rule.severity, self.finding.facts)


@dataclass
class CycleState:
    """What one cycle carries from step to step."""

    now: float
    start: float
    """The start of the observed window (its end is ``now``)."""
    rules: RuleBase
    report: CycleReport
    observed: list[Observed] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)
    """Providers that answered this cycle (their functions that are gone are really gone)."""
    set_aside: list[Decision] = field(default_factory=list)
    """Records of windows that cannot be true."""
    writes: list[Decision] = field(default_factory=list)
    """Verifications, recorded as they are at the end of the cycle."""
    findings: list[ToPlan] = field(default_factory=list)
    resolved: list[Decision] = field(default_factory=list)
    """Rules that stopped holding: decided already, nothing to plan."""
    planned: list[Decision] = field(default_factory=list)
    budget: Budget | None = None
    guarded: list[Decision] = field(default_factory=list)
    decided: list[Decision] = field(default_factory=list)
    """The guarded decisions after the apply step, in order; ``made`` index the unapplied."""
    made: list[int] = field(default_factory=list)
    """Positions in ``decided`` of the decisions the cycle's record writes (nothing applied)."""
    only: frozenset[FunctionRef] | None = None
    """An early cycle's functions (None: a regular cycle over every function)."""

    def by_ref(self) -> dict[FunctionRef, Observed]:
        """The observed functions by reference."""
        return {o.target.ref: o for o in self.observed}
