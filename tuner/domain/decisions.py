"""Decisions: what tuner decided for a finding, what became of it, and the intent of a change.

A decision is also the audit record: the store keeps every decision, acted on or not.
Its :class:`Kind` says what made it; its state moves only along
:data:`tuner.domain.lifecycle.TRANSITIONS`; a decision held back carries a typed
:class:`~tuner.domain.holds.Hold`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from tuner.domain.holds import Hold
from tuner.domain.lifecycle import LIVE, VERDICT_STATES, IntentState, State, Verdict, check
from tuner.domain.model import (
    Change,
    FactValue,
    FunctionRef,
    Mode,
    Severity,
    trace_ids,
)


class Kind(enum.StrEnum):
    """What made a decision."""

    FINDING = "finding"
    """A rule's condition held: its action changes a knob, or people are told."""
    RESOLVED = "resolved"
    """A rule's condition no longer holds after it did."""
    ROLLBACK = "rollback"
    """A change undone: judged worse by later windows, or by a person."""
    TELEMETRY = "telemetry"
    """A window that cannot be true, set aside."""
    MANUAL = "manual"
    """A person paused or resumed tuning of a function."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What tuner decided for one finding and one action, and what became of it.

    This is also the audit record: the store keeps every decision, acted on or not.
    """

    id: str
    time: float
    ref: FunctionRef
    rule: str
    action: str
    severity: Severity
    mode: Mode
    """The stricter of the global mode and the rule's own, settled by planning."""
    state: State = State.PLANNED
    verdict: Verdict | None = None
    """The guard's verdict; None while the decision is only planned."""
    facts: Mapping[str, FactValue] = field(default_factory=dict)
    change: Change | None = None
    summary: str = ""
    """What happened, in one sentence with numbers."""
    advice: str = ""
    """What a person should do next."""
    reason: str = ""
    """Why applying failed, what a verdict rests on, or who asked (people's words)."""
    judged_windows: int = 0
    """Windows after the change that verification has counted so far."""
    channels: tuple[str, ...] = ()
    group: str = ""
    """Notifications for decisions with the same group key are sent together."""
    undoes: str = ""
    """For a rollback: the id of the decision whose change it reverses."""
    seen: int = 1
    """Consecutive cycles that made this same decision (one record; see tuner.decisions.repeats)."""
    last_seen: float | None = None
    """When the cycle that last made it ran; None: only at ``time``."""
    hold: Hold | None = None
    """What held it back, when something did (the guard, a pause, the provider)."""
    kind: Kind = Kind.FINDING

    @property
    def trace_ids(self) -> tuple[str, ...]:
        """The ids of the traces the decision's evidence rests on (from its facts), cited first."""
        return trace_ids(self.facts)

    @property
    def why(self) -> str:
        """Why it stands where it does, in words: its hold's sentence, else its reason."""
        return self.hold.describe() if self.hold is not None else self.reason

    @property
    def applied(self) -> bool:
        """True when the change went live (even if it was later rolled back)."""
        return self.state in LIVE and self.state is not State.APPLYING

    def advance(self, state: State, reason: str = "", **changes: Any) -> Decision:
        """A copy in the next state, checked against the transition table."""
        check(self.state, state)
        return self.replaced(state=state, reason=reason or self.reason, **changes)

    def with_verdict(
        self, verdict: Verdict, reason: str = "", hold: Hold | None = None
    ) -> Decision:
        """A planned decision with the guard's verdict, in the state that verdict leads to."""
        state = VERDICT_STATES[verdict]
        if state is not self.state:
            check(self.state, state)  # as advance() does, in one copy instead of two
        return self.replaced(state=state, verdict=verdict, reason=reason or self.reason, hold=hold)

    def held(self, hold: Hold) -> Decision:
        """A decision the guard let go ahead, held back after all (paused, throttled)."""
        check(self.state, State.SKIPPED)
        return self.replaced(state=State.SKIPPED, hold=hold)

    def replaced(self, **changes: Any) -> Decision:
        """A copy with some fields replaced, as :func:`dataclasses.replace` makes it, faster.

        A cycle copies thousands of decisions; setting the slots of a new instance directly
        takes about half the time of ``replace``, which builds keyword arguments for
        ``__init__``.
        """
        if not changes.keys() <= _DECISION_FIELDS:
            raise TypeError(f"Decision has no field {sorted(changes.keys() - _DECISION_FIELDS)}")
        new = object.__new__(Decision)
        for name, slot in _DECISION_SLOTS:
            slot.__set__(new, changes.get(name, slot.__get__(self)))
        return new


_DECISION_SLOTS = tuple((f.name, Decision.__dict__[f.name]) for f in fields(Decision))
_DECISION_FIELDS = frozenset(name for name, _ in _DECISION_SLOTS)


@dataclass(frozen=True, slots=True)
class Intent:
    """A change about to be applied, written down first so a crash leaves a record."""

    id: str
    decision_id: str
    ref: FunctionRef
    changes: tuple[Change, ...]
    created: float
    state: IntentState = IntentState.OPEN
