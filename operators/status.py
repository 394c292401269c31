"""The TuningPolicy status the operator writes: conditions, counts and last decisions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tuner.daemon.reports import CycleReport
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State

LAST_DECISIONS = 10


def timestamp(when: float) -> str:
    """RFC 3339 in UTC, as Kubernetes writes times."""
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def condition(kind: str, ok: bool, reason: str, message: str, now: float) -> dict[str, Any]:
    """One status condition (``type``, ``status``, ``reason``, ``message``, time)."""
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message[:1000],
        "lastTransitionTime": timestamp(now),
    }


def merge_conditions(
    current: Sequence[dict[str, Any]], updates: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Conditions with ``updates`` applied; a condition keeps its transition time if unchanged."""
    by_type = {c.get("type"): dict(c) for c in current}
    for update in updates:
        old = by_type.get(update["type"])
        if old and old.get("status") == update["status"]:
            update = dict(update, lastTransitionTime=old.get("lastTransitionTime"))
        by_type[update["type"]] = update
    return [by_type[k] for k in sorted(by_type, key=str)]


def invalid_status(current_status: dict[str, Any], message: str, now: float) -> dict[str, Any]:
    """Status of a policy that cannot run: both conditions False with the reason."""
    return {
        "conditions": merge_conditions(
            current_status.get("conditions") or [],
            [
                condition("RulesValid", False, "Invalid", message, now),
                condition("Ready", False, "InvalidPolicy", message, now),
            ],
        ),
    }


def _decision_entry(decision: Decision) -> dict[str, Any]:
    entry = {
        "time": timestamp(decision.time),
        "function": decision.ref.key,
        "rule": decision.rule,
        "state": decision.state.value,
        "summary": decision.summary or decision.why,
    }
    if decision.change is not None:
        entry["change"] = decision.change.describe()
    if decision.why:
        entry["reason"] = decision.why
    return entry


def cycle_status(
    current_status: dict[str, Any], report: CycleReport, mode: str, leader: str
) -> dict[str, Any]:
    """Status after a cycle: Ready, counts summed over cycles, the newest decisions."""
    counts = dict(current_status.get("counts") or {})
    for decision in report.decisions:
        counts[decision.state.value] = int(counts.get(decision.state.value, 0)) + 1
    decisions = [_decision_entry(d) for d in report.decisions if d.state is not State.OBSERVED]
    recent = (decisions + list(current_status.get("lastDecisions") or []))[:LAST_DECISIONS]
    ready_message = f"{report.targets} targets, {len(report.decisions)} decisions" + (
        f"; errors: {'; '.join(report.errors)}" if report.errors else ""
    )
    conditions = merge_conditions(
        current_status.get("conditions") or [],
        [
            condition("RulesValid", True, "Loaded", "the rules loaded", report.finished),
            condition(
                "Ready",
                not report.errors,
                "CycleFailed" if report.errors else "Running",
                ready_message,
                report.finished,
            ),
        ],
    )
    return {
        "conditions": conditions,
        "mode": mode,
        "targets": report.targets,
        "applied": int(counts.get(State.APPLIED.value, 0)),
        "counts": counts,
        "lastCycle": timestamp(report.finished),
        "lastDecisions": recent,
        "leader": leader,
    }
