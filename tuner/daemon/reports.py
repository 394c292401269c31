"""What one cycle saw and did, and who is told: the report and the observers of the loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.model import Finding, Target

if TYPE_CHECKING:
    from tuner.engine import RuleBase

STEPS = ("observe", "facts", "verify", "evaluate", "plan", "guard", "apply", "record", "notify")
"""The steps of one cycle, in order (``tuner_cycle_step_seconds{step}`` names them)."""


@dataclass
class CycleReport:
    """What one cycle saw and did."""

    started: float
    finished: float = 0.0
    targets: int = 0
    findings: int = 0
    decisions: list[Decision] = field(default_factory=list)
    verified: list[Decision] = field(default_factory=list)
    """Earlier changes judged in this cycle (rollbacks are in ``decisions``)."""
    errors: list[str] = field(default_factory=list)
    step_seconds: dict[str, float] = field(default_factory=dict)
    early: bool = False
    """A cycle run early, for the functions a provider reported failing (not every function)."""
    """How long each step took (wall time), by the names of :data:`STEPS`."""

    def count(self, state: State) -> int:
        """How many decisions ended in this state."""
        return sum(1 for d in self.decisions if d.state is state)


class CycleObserver(Protocol):
    """Receives what the loop saw, as it sees it; must be quick and must not raise."""

    def function_observed(
        self, target: Target, facts: Mapping[str, Any], findings: Sequence[Finding], now: float
    ) -> None:
        """One function's facts for this cycle and the rules that fired for it."""
        ...

    def cycle_finished(self, report: CycleReport, rules: RuleBase) -> None:
        """The cycle is over: its report, and the rule base it ran with."""
        ...
