"""How a decision is written to the store's rows and read back."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from tuner.domain.decisions import Decision, Kind
from tuner.domain.holds import Hold
from tuner.domain.lifecycle import State, Verdict
from tuner.domain.model import Change, FunctionRef, Knob, Mode, Severity

ROW_LENGTH = 25
"""Values in a written row: the columns of :data:`tuner.store.schema.COLUMNS` and ``run``."""


def decision_row(d: Decision, run: int | None = None) -> tuple[Any, ...]:
    """A decision as the row the store writes (``run``: see :data:`tuner.store.schema.READ`)."""
    c = d.change
    return (
        d.id,
        d.time,
        d.ref.key,
        d.rule,
        d.action,
        d.severity.value,
        d.mode.value,
        d.state.value,
        d.verdict.value if d.verdict else None,
        c.knob.value if c else None,
        c.before if c else None,
        c.after if c else None,
        d.summary,
        d.advice,
        d.reason,
        d.judged_windows,
        json.dumps(list(d.channels)),
        d.group,
        facts_json(d.facts),
        d.undoes,
        d.seen,
        d.last_seen if d.last_seen is not None else d.time,
        d.kind.value,
        json.dumps(d.hold.as_json()) if d.hold is not None else None,
        run,
    )


def decision_of(row: tuple[Any, ...]) -> Decision:
    """A decision from a row read with :data:`tuner.store.schema.READ` (or ``COLUMNS``)."""
    (
        id_,
        time,
        function,
        rule,
        action,
        severity,
        mode,
        state,
        verdict,
        knob,
        before,
        after,
        summary,
        advice,
        reason,
        judged_windows,
        channels,
        grp,
        facts,
        undoes,
        seen,
        last_seen,
        kind,
        hold,
    ) = row
    change = None
    if knob is not None:
        change = Change(Knob(knob), _number(before), _number(after) or 0)
    return Decision(
        id=id_,
        time=time,
        ref=FunctionRef.parse(function),
        rule=rule,
        action=action,
        severity=Severity(severity),
        mode=Mode(mode),
        state=State(state),
        verdict=Verdict(verdict) if verdict else None,
        facts=json.loads(facts),
        change=change,
        summary=summary,
        advice=advice,
        reason=reason,
        judged_windows=judged_windows,
        channels=tuple(json.loads(channels)),
        group=grp,
        undoes=undoes,
        seen=seen,
        last_seen=None if last_seen is None or last_seen == time else last_seen,
        hold=Hold.from_json(json.loads(hold)) if hold else None,
        kind=Kind(kind),
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)


def facts_json(facts: Mapping[str, Any]) -> str:
    """The facts as JSON; NaN and infinite numbers (rare) become null."""
    try:
        return json.dumps(facts, default=_json_default, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(facts), default=_json_default, allow_nan=False)


def _finite(value: Any) -> Any:
    """The facts with NaN and infinite numbers replaced by None (unknown), at any depth."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    f = float(value)
    return int(f) if f.is_integer() else f
