"""The fleet view: each function's state, from its latest facts and decisions.

:func:`fleet_state` is the one place that maps decisions and facts to the state a person
sees (healthy, watched, changed, verifying, rolled back, outage, no data).  Rows are built
once per cycle and filtered and paged on the server, so a page of 10,000 functions costs a
page, not the fleet.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from tuner.decisions.documents import decision_json
from tuner.domain.decisions import Decision, Kind
from tuner.domain.lifecycle import State
from tuner.domain.model import Severity
from tuner.engine.reference import FAILING_DEPENDENCY_ERROR_RATE

if TYPE_CHECKING:
    from tuner.daemon.live import FunctionView, LiveState
    from tuner.engine import RuleBase

HEALTHY, WATCHED, CHANGED, VERIFYING = "healthy", "watched", "changed", "verifying"
ROLLED_BACK, OUTAGE, NO_DATA = "rolled back", "outage", "no data"
STATES = (ROLLED_BACK, OUTAGE, VERIFYING, CHANGED, WATCHED, NO_DATA, HEALTHY)
"""Every fleet state, most pressing first (the default sort order)."""
RECENT_S = 86_400.0
"""How long a change, rollback or recommendation colours a function's state."""
_SEVERITY_RANK = {
    "": 0,
    Severity.INFO.value: 1,
    Severity.WARNING.value: 2,
    Severity.CRITICAL.value: 3,
}
_TOLD = (State.RECOMMENDED, State.NOTIFIED, State.FAILED)


def fleet_state(
    facts: Mapping[str, Any] | None,
    findings: tuple[str, ...],
    last: Decision | None,
    change: Decision | None,
    rules: RuleBase | None,
    now: float,
) -> str:
    """The state of one function: the only mapping from decisions and facts to a fleet state.

    ``last`` is its latest decision, ``change`` its latest decision that carried a change
    (applied, applying, failed or rolled back); both may be older than :data:`RECENT_S`.
    """
    recent_change = change is not None and now - change.time < RECENT_S
    if recent_change and change is not None:
        if change.state is State.ROLLED_BACK or (change.kind is Kind.ROLLBACK and change.applied):
            return ROLLED_BACK  # the change, or the rollback that reversed it
        if change.state in (State.APPLIED, State.APPLYING) and change.kind is not Kind.ROLLBACK:
            return VERIFYING
    if facts is not None and _outage(facts, findings, rules):
        return OUTAGE
    if recent_change and change is not None and change.applied:
        return CHANGED
    if facts is None or not facts.get("invocations"):
        return NO_DATA
    if findings:
        return WATCHED
    if last is not None and now - last.time < RECENT_S and last.state in _TOLD:
        return WATCHED if last.kind is not Kind.RESOLVED else HEALTHY
    return HEALTHY


def _outage(facts: Mapping[str, Any], findings: tuple[str, ...], rules: RuleBase | None) -> bool:
    """A dependency is failing for this function (by the facts, or a rule grouped by dependency)."""
    rate = facts.get("dependency_error_rate")
    if isinstance(rate, float) and rate >= FAILING_DEPENDENCY_ERROR_RATE:
        return True
    if rules is None:
        return False
    for name in findings:
        compiled = rules.by_name(name)
        if compiled is not None and compiled.rule.group_by == "dependency":
            return True
    return False


def severity_of(
    findings: tuple[str, ...], change: Decision | None, rules: RuleBase | None, now: float
) -> str:
    """The highest severity among the rules firing now, else of a recent change; '' for none."""
    found = [
        c.rule.severity.value
        for name in findings
        if rules is not None and (c := rules.by_name(name)) is not None
    ]
    if not found and change is not None and now - change.time < RECENT_S:
        found = [change.severity.value]
    return max(found, key=_SEVERITY_RANK.__getitem__, default="")


@dataclass(frozen=True)
class FleetRow:
    """One line of the fleet table."""

    key: str
    name: str
    provider: str
    scope: str
    owner: str
    state: str
    severity: str
    findings: tuple[str, ...]
    last_change: Decision | None
    invocations: float | None

    def to_json(self) -> dict[str, Any]:
        """The JSON form the dashboard reads: every field, the last change as a decision."""
        c = self.last_change
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row.update(findings=list(self.findings), last_change=c and decision_json(c))
        return row


def row_of(view: FunctionView, state: LiveState, now: float) -> FleetRow:
    """The fleet row of one function."""
    last, change, _ = state.decisions_of(view.key)
    ref = view.target.ref
    invocations = view.facts.get("invocations")
    return FleetRow(
        key=view.key,
        name=ref.name,
        provider=ref.provider,
        scope=ref.scope,
        owner=view.target.owner,
        state=fleet_state(view.facts, view.findings, last, change, state.rules, now),
        severity=severity_of(view.findings, change, state.rules, now),
        findings=view.findings,
        last_change=change,
        invocations=invocations if isinstance(invocations, float) else None,
    )


class Fleet:
    """The fleet's rows, rebuilt when a new cycle is published, filtered and paged per request."""

    def __init__(self, state: LiveState, clock: Callable[[], float] = time.time):
        self.state = state
        self.clock = clock
        self._lock = threading.Lock()
        self._built_for = -1
        self._rows: list[FleetRow] = []

    def rows(self) -> list[FleetRow]:
        """Every row, most pressing state first, then by key."""
        with self._lock:
            version = self.state.version
            if version != self._built_for:
                now = self.clock()
                rows = [row_of(v, self.state, now) for v in self.state.functions()]
                order = {s: i for i, s in enumerate(STATES)}
                rows.sort(key=lambda r: (order[r.state], -_SEVERITY_RANK[r.severity], r.key))
                self._rows, self._built_for = rows, version
            return self._rows

    def query(
        self,
        q: str = "",
        state: str = "",
        provider: str = "",
        page: int = 1,
        per_page: int = 50,
    ) -> dict[str, Any]:
        """One page of the rows that match a search text, a state and a provider."""
        rows = self.rows()
        counts = Counter(r.state for r in rows)
        needle = q.strip().lower()
        if needle or state or provider:
            rows = [
                r
                for r in rows
                if (not state or r.state == state)
                and (not provider or r.provider == provider)
                and (not needle or needle in r.key.lower() or needle in r.owner.lower())
            ]
        per_page = max(1, min(per_page, 500))
        pages = max(1, -(-len(rows) // per_page))
        page = max(1, min(page, pages))
        chunk = rows[(page - 1) * per_page : page * per_page]
        return {
            "total": len(rows),
            "fleet": sum(counts.values()),
            "page": page,
            "pages": pages,
            "per_page": per_page,
            "counts": {s: counts.get(s, 0) for s in STATES},
            "providers": sorted(self.state.per_provider),
            "rows": [r.to_json() for r in chunk],
        }

    def counts(self) -> dict[str, int]:
        """How many functions are in each state."""
        return dict(Counter(r.state for r in self.rows()))
