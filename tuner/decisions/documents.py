"""A decision as a JSON document: the one form the command line, the API and the dashboard show.

Times are ISO 8601 UTC for people (``time``, ``last_seen``) and POSIX seconds for charts
and tools (``at``, ``last_seen_at``).
"""

from __future__ import annotations

from typing import Any

from tuner.decisions.advice import flame_graph_command
from tuner.domain.decisions import Decision
from tuner.domain.times import iso


def decision_json(d: Decision) -> dict[str, Any]:
    """The JSON form of a decision, as ``once --json``, ``explain --json`` and ``/api`` give it."""
    c = d.change
    last_seen = d.last_seen if d.last_seen is not None else d.time
    return {
        "id": d.id,
        "time": iso(d.time),
        "at": d.time,
        "kind": d.kind.value,
        "function": d.ref.key,
        "rule": d.rule,
        "action": d.action,
        "knob": c.knob.value if c else None,
        "change": c.describe() if c else "",
        "before": c.before if c else None,
        "after": c.after if c else None,
        "mode": d.mode.value,
        "verdict": d.verdict.value if d.verdict else None,
        "state": d.state.value,
        "applied": d.applied,
        "severity": d.severity.value,
        "group": d.group,
        "summary": d.summary,
        "advice": d.advice,
        "reason": d.why,
        "hold": d.hold.as_json() if d.hold is not None else None,
        "undoes": d.undoes,
        "trace_ids": list(d.trace_ids),
        "flame_graph": flame_graph_command(d.facts) if d.trace_ids else None,
        "seen": d.seen,
        "last_seen": iso(last_seen),
        "last_seen_at": last_seen,
    }
