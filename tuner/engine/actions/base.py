"""The shape every rule action has: a typed model with a ``plan`` method, and its plan.

Each action is a pydantic model whose fields are its YAML parameters; its ``plan`` method
looks at the function's configuration and the window's facts and either proposes a
:class:`~tuner.domain.model.Change` (clamped to the provider's :class:`Limits`) or says
why it cannot.  The JSON Schema of rule files is generated from these models, so the
schema and the code cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from tuner.domain.model import Change, FunctionConfig, Knob, Limits


@dataclass(frozen=True, slots=True)
class Plan:
    """What an action proposes: a change, or none with the reason why."""

    change: Change | None
    summary: str
    reason: str = ""

    @property
    def applicable(self) -> bool:
        """True when the action has something to change (or is notify-only by design)."""
        return not self.reason


def not_applicable(reason: str) -> Plan:
    """A plan that changes nothing, and why."""
    return Plan(change=None, summary="", reason=reason)


class BaseAction(BaseModel):
    """An action of a rule: its parameters, what it changes, and how it plans."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    knob: ClassVar[Knob | None] = None
    symptom: ClassVar[str | None] = None
    """The fact that must fall after this action for the change to count as helping
    (``extra.<name>`` for a provider fact)."""
    must_not_rise: ClassVar[tuple[str, ...]] = ()
    """Facts besides the p95 duration whose rise by the verify policy's latency factor makes
    the change worse (e.g. the pair's cost per call for a fusion)."""
    monotone: ClassVar[bool] = False
    """True when enough of the knob meets the need (memory, timeout): while the symptom
    stays, the next step is due, and the change is never rolled back to a value known to
    fail because its invocations now run longer or time out (a new symptom, for its rule)."""
    temporary: ClassVar[bool] = False
    """True when the change ends by itself (tracing for a while): it is not judged as a fix,
    it expires."""
    failure: ClassVar[str | None] = None
    """An ``extra`` fact counting what the change itself can fail at (chains, splits): any
    in a window after it, and the change is at best partial, never improved."""

    @classmethod
    def account(cls, after: Mapping[str, Any]) -> str:
        """How the function runs after this change, in a few words ('': nothing to add)."""
        return ""

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Propose a change for this function, or say why there is none."""
        raise NotImplementedError
