"""Evaluation: match the rule base against one function's facts.

Pure and fast: no I/O, conditions are compiled closures.  The ``for`` clause of a rule
needs memory across windows; :class:`Streaks` holds how many consecutive windows each
rule has matched for each function, and the loop persists it between cycles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.engine.rulefiles import RuleBase
from tuner.model import Finding, Target


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
    """
    findings: list[Finding] = []
    resolved: list[str] = []
    if not facts.get("invocations"):
        return findings, resolved
    key = target.ref.key
    counts = streaks.counts  # no streak to break for most functions: reset() is not called
    for compiled in rules.rules:
        rule = compiled.rule
        if not compiled.matches_all and not rule.match.matches(target):
            continue
        holds = compiled.condition.evaluate(facts)
        if holds is True:
            if streaks.bump(key, rule.name) >= rule.for_windows:
                findings.append(Finding(target.ref, rule.name, rule.severity, facts, window_end))
        elif holds is False and key in counts and streaks.reset(key, rule.name) >= rule.for_windows:
            resolved.append(rule.name)  # only data showing health resolves; unknown keeps it
    return findings, resolved
