"""Verification: did an applied change help, do nothing, or make things worse?

Pure: compares the facts recorded with the decision (the window before the change)
against a window observed after it, and asks the rule's condition again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tuner.actions import ACTIONS
from tuner.engine.conditions import Condition
from tuner.model import Verification, fact_number


@dataclass(frozen=True)
class VerifyPolicy:
    """Thresholds for calling a change worse; set in tuner.yaml under ``verify``."""

    windows: int = 3
    """Windows after a change within which the problem must go away."""
    error_rate_increase: float = 0.10
    """Absolute rise of the error rate that counts as worse."""
    latency_factor: float = 1.5
    """p95 duration rising by this factor counts as worse."""
    min_invocations: int = 5
    """Fewer invocations than this after a change: keep waiting."""
    rollback_unhelpful: bool = True
    """Roll back a change that raised cost when the problem did not go away in ``windows``."""
    min_improvement: float = 0.2
    """The action's symptom (e.g. the OOM rate) must fall by at least this share."""


def verify(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    action: str,
    condition: Condition | None,
    policy: VerifyPolicy,
) -> Verification:
    """Judge one window after a change against the window that triggered it.

    Worse: the error rate rose, or the p95 duration rose without fewer errors.  Improved:
    the action's symptom (e.g. ``oom_rate`` for more memory) fell by ``min_improvement``;
    for an action without a symptom, or when the symptom was not present before, the
    rule's condition no longer holds.
    """
    invocations = fact_number(after, "invocations")
    if invocations is None or invocations < policy.min_invocations:
        return Verification.PENDING
    rate_before, rate_after = fact_number(before, "error_rate"), fact_number(after, "error_rate")
    known = rate_before is not None and rate_after is not None
    if known and rate_after > rate_before + policy.error_rate_increase:  # type: ignore[operator]
        return Verification.WORSE
    fewer_errors = known and rate_after < rate_before  # type: ignore[operator]
    p95_before, p95_after = (
        fact_number(before, "duration_p95_ms"),
        fact_number(after, "duration_p95_ms"),
    )
    slower = bool(p95_before and p95_after and p95_after > p95_before * policy.latency_factor)
    if slower and not fewer_errors:
        return Verification.WORSE
    action_cls = ACTIONS.get(action)
    symptom = action_cls.symptom if action_cls is not None else None
    was = fact_number(before, symptom) if symptom else None
    if symptom and was:
        now = fact_number(after, symptom)
        helped = now is not None and now <= was * (1.0 - policy.min_improvement)
        return Verification.IMPROVED if helped else Verification.UNCHANGED
    if condition is None or condition.evaluate(after) is not True:
        return Verification.IMPROVED
    return Verification.UNCHANGED


def evidence(before: Mapping[str, Any], after: Mapping[str, Any], action: str) -> str:
    """A short account of what moved, e.g. ``oom_rate 0.45 -> 0; duration_p95_ms 320 -> 41``."""
    action_cls = ACTIONS.get(action)
    names = [action_cls.symptom] if action_cls is not None and action_cls.symptom else []
    names += [n for n in ("error_rate", "duration_p95_ms") if n not in names]
    parts = []
    for name in names:
        was, now = fact_number(before, name), fact_number(after, name)
        if was is not None or now is not None:
            parts.append(f"{name} {_short(was)} -> {_short(now)}")
    return "; ".join(parts)


def _short(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2g}"
