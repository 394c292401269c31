"""Alerts: decisions as the notifier keeps them, in plain values that survive a restart."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from tuner.decisions.planning import DEPENDENCY_GROUP, function_group
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import EVENTS
from tuner.domain.model import Change, Knob

_EVENTS = frozenset(s.value for s in EVENTS)


@dataclass(frozen=True, slots=True)
class Alert:
    """One decision people should hear about, reduced to JSON-friendly values."""

    decision_id: str
    time: float
    ref: str
    rule: str
    action: str
    severity: str
    mode: str
    state: str
    group: str
    summary: str = ""
    advice: str = ""
    reason: str = ""
    knob: str | None = None
    before: float | int | None = None
    after: float | int | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_decision(cls, decision: Decision) -> Alert:
        """The alert for one decision; the group defaults to the function's own."""
        change = decision.change
        return cls(
            decision_id=decision.id,
            time=decision.time,
            ref=decision.ref.key,
            rule=decision.rule,
            action=decision.action,
            severity=decision.severity.value,
            mode=decision.mode.value,
            state=decision.state.value,
            group=decision.group or function_group(decision.ref),
            summary=decision.summary,
            advice=decision.advice,
            reason=decision.why,
            knob=change.knob.value if change else None,
            before=change.before if change else None,
            after=change.after if change else None,
            facts=_plain(decision.facts),
        )

    @property
    def key(self) -> str:
        """Identity within a group: the same function, rule and action is the same finding.

        Events (something tuner did) are each their own alert, one per decision.
        """
        identity = f"{self.ref}|{self.rule}|{self.action}"
        return f"{identity}|{self.decision_id}" if self.event else identity

    @property
    def fingerprint(self) -> str:
        """What makes a repeated alert news: a different state or a different change."""
        return f"{self.state}|{self.knob}|{self.before}|{self.after}"

    @property
    def event(self) -> bool:
        """True for something tuner did (applied, failed, rolled back): reported exactly once."""
        return self.state in _EVENTS

    @property
    def change(self) -> Change | None:
        """The change this alert reports, if any."""
        if self.knob is None or self.after is None:
            return None
        return Change(knob=Knob(self.knob), before=self.before, after=self.after)

    @property
    def dependency(self) -> str | None:
        """The dependency this alert is about, when its group is a dependency's."""
        if self.group.startswith(DEPENDENCY_GROUP):
            return self.group[len(DEPENDENCY_GROUP) :]
        return None

    def depends_on(self, dependency: str) -> bool:
        """True when the facts show the function calling ``dependency``."""
        deps = self.facts.get("dependencies")
        if isinstance(deps, Mapping) and dependency in deps:
            return True
        return self.facts.get("worst_dependency") == dependency

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (shallow: the facts are plain values already)."""
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """Inverse of :meth:`to_dict`; also reads alerts queued by the previous version."""
        values = {k: v for k, v in data.items() if k in _FIELDS}
        if "outcome" in data and "state" not in data:  # outcome and verification, before states
            values["state"] = _LEGACY.get(
                (data["outcome"], data.get("verification")), data["outcome"]
            )
        return cls(**values)


_FIELDS = tuple(f.name for f in fields(Alert))
_LEGACY: dict[tuple[Any, Any], str] = {
    ("applied", v): v for v in ("improved", "unchanged", "worse")
}


def _plain(value: Any) -> Any:
    """Facts as plain JSON values (mappings become dicts, unknown types become text)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.loads(json.dumps(value, default=str))
