"""Evaluation: match the rule base against one function's facts.

Pure and fast: no I/O, each condition is one compiled function.  The ``for`` clause of a rule
needs memory across windows; :class:`Streaks` holds how many consecutive windows each
rule has matched for each function, and the loop persists it between cycles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.domain.model import Finding, Target
from tuner.engine.rulefiles import RuleBase


class Streaks:
    """Consecutive matching windows per function and rule; absent means zero."""

    def __init__(self, counts: Mapping[str, Mapping[str, int]] | None = None):
        self.counts: dict[str, dict[str, int]] = {
            k: dict(v) for k, v in (counts or {}).items() if isinstance(v, Mapping)
        }

    def bump(self, function_key: str, rule: str) -> int:
        """Count one more matching window and return the streak."""
        rules = self.counts.setdefault(function_key, {})
        n = rules.get(rule, 0) + 1
        rules[rule] = n
        return n

    def reset(self, function_key: str, rule: str) -> int:
        """Break a streak and return how long it was."""
        rules = self.counts.get(function_key)
        if not rules:
            return 0
        n = rules.pop(rule, 0)
        if not rules:
            del self.counts[function_key]
        return n

    def forget(self, keep: set[str]) -> None:
        """Drop the streaks of functions that are gone, so state stays bounded."""
        for key in [k for k in self.counts if k not in keep]:
            del self.counts[key]


def evaluate(
    rules: RuleBase, target: Target, facts: Mapping[str, Any], streaks: Streaks, window_end: float
) -> tuple[list[Finding], list[str]]:
    """The findings for one target, and the names of rules that stopped holding (resolved).

    A finding is a rule that matches the target and whose condition held for ``for``
    consecutive windows.  A window without invocations neither starts nor breaks a
    streak, and neither does a condition that is unknown (``null``, e.g. no calls to the
    failing dependency): no data is no evidence either way, so silence never resolves.
    Nor does thin data: a condition that no longer holds breaks a streak only in a window
    that shows enough to judge (the rule's ``resolve_when``, by default 5 invocations).
    """
    findings: list[Finding] = []
    resolved: list[str] = []
    if not facts.get("invocations"):
        return findings, resolved
    key = target.ref.key
    ref = target.ref
    counts = streaks.counts
    mine = counts.get(key)  # this function's streaks: none for most, so nothing to break
    for name, for_windows, severity, condition, matches, shows_health in rules.steps:
        if matches is not None and not matches(target):
            continue
        holds = condition(facts)
        if holds is True:  # streaks.bump(key, name), inlined
            if mine is None:
                mine = counts[key] = {}
            mine[name] = n = mine.get(name, 0) + 1
            if n >= for_windows:
                findings.append(Finding(ref, name, severity, facts, window_end))
        elif holds is False and mine and name in mine and shows_health(facts) is True:
            if streaks.reset(key, name) >= for_windows:
                resolved.append(name)  # only data showing health resolves; unknown keeps it
            mine = counts.get(key)  # reset() drops the function's entry with its last streak
    return findings, resolved
