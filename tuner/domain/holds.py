"""Holds: why a decision that could change a function did not, as a typed value.

The guard, the loop and the person who paused a function hold decisions back; a hold says
which of them did and with what data (which knob, until when, which cap, who).  Everything
that decides compares holds, never sentences; :meth:`Hold.describe` writes the sentence
where people read it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from tuner.domain.model import Knob
from tuner.domain.times import iso


class HoldKind(enum.StrEnum):
    """What held a decision back."""

    NO_DATA = "no-data"
    """The window had too few invocations: no data is never a reason to act."""
    TOUCHED = "touched"
    """The knob is already changed in this cycle."""
    COOLDOWN = "cooldown"
    """The knob changed recently, for the same rule."""
    HYSTERESIS = "hysteresis"
    """The knob moved the other way recently: not back so soon."""
    UNDONE = "undone"
    """The same rule lowered the knob before and it was rolled back: not again so soon."""
    CAP = "cap"
    """A cap on the number of changes is used up."""
    PAUSE = "pause"
    """A person paused tuning of the function."""
    BAD_TELEMETRY = "bad-telemetry"
    """The window cannot be true: no rule acts on it."""
    THROTTLED = "throttled"
    """The provider is throttling changes in this cycle."""


class Cap(enum.StrEnum):
    """Which cap a change ran into."""

    FLEET = "fleet"
    """The fleet's changes per cycle and per hour."""
    FUNCTION_DAY = "function-day"
    """One function's changes per day."""


@dataclass(frozen=True, slots=True)
class Hold:
    """Why a decision was held back, with the data that says so.

    Two holds are equal when they say the same: a change held back for the same reason,
    cycle after cycle, is one repeated decision.
    """

    kind: HoldKind
    knob: Knob | None = None
    since: float | None = None
    """When the knob last changed (cooldown, hysteresis)."""
    until: float | None = None
    """When the hold ends (cooldown, hysteresis)."""
    cap: Cap | None = None
    limits: tuple[int, ...] = ()
    """The cap's numbers: per cycle and per hour (fleet), per day (function)."""
    by: str = ""
    """Who paused the function."""
    detail: str = ""
    """What cannot be true (bad telemetry), or what the provider said (throttled)."""

    def describe(self) -> str:
        """The hold in one sentence, as messages, ``tuner explain`` and the dashboard say it."""
        knob = self.knob.value if self.knob is not None else "the knob"
        kind = self.kind
        if kind is HoldKind.NO_DATA:
            return "no data in the window: no action"
        if kind is HoldKind.TOUCHED:
            return f"{knob} is already changed in this cycle"
        if kind is HoldKind.COOLDOWN:
            return (
                f"cooldown: {knob} changed at {_at(self.since)}, not again before {_at(self.until)}"
            )
        if kind is HoldKind.HYSTERESIS:
            return (
                f"hysteresis: {knob} moved the other way at {_at(self.since)}, "
                f"not back before {_at(self.until)}"
            )
        if kind is HoldKind.UNDONE:
            return (
                f"undone: lowering {knob} at {_at(self.since)} was rolled back, "
                f"not tried again before {_at(self.until)}"
            )
        if kind is HoldKind.CAP and self.cap is Cap.FLEET:
            per_cycle, per_hour = self.limits
            return (
                f"cap: the fleet's changes are used up (at most {per_cycle} "
                f"per cycle and {per_hour} per hour)"
            )
        if kind is HoldKind.CAP:
            return f"cap: {self.limits[0]} changes per function per day"
        if kind is HoldKind.PAUSE:
            return f"tuning of this function is paused by {self.by or 'a person'}"
        if kind is HoldKind.BAD_TELEMETRY:
            return f"bad telemetry: {self.detail}: no rule acts on this window"
        said = f" ({self.detail})" if self.detail else ""
        return f"the provider is throttling changes: tried again next cycle{said}"

    def as_json(self) -> dict[str, Any]:
        """The hold as a JSON object (the store's form), without its empty fields."""
        out: dict[str, Any] = {"kind": self.kind.value}
        if self.knob is not None:
            out["knob"] = self.knob.value
        if self.cap is not None:
            out["cap"] = self.cap.value
        out.update(
            {k: v for k, v in (("since", self.since), ("until", self.until)) if v is not None}
        )
        out.update({k: v for k, v in (("by", self.by), ("detail", self.detail)) if v})
        if self.limits:
            out["limits"] = list(self.limits)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Hold:
        """Inverse of :meth:`as_json`."""
        return cls(
            kind=HoldKind(data["kind"]),
            knob=Knob(data["knob"]) if "knob" in data else None,
            since=data.get("since"),
            until=data.get("until"),
            cap=Cap(data["cap"]) if "cap" in data else None,
            limits=tuple(data.get("limits", ())),
            by=data.get("by", ""),
            detail=data.get("detail", ""),
        )


def _at(t: float | None) -> str:
    return iso(t) if t is not None else "?"
