"""Streaks: consecutive matching windows per function and rule, kept across evaluations."""

from __future__ import annotations

from tuner.domain.model import FunctionConfig, FunctionRef, Limits, Target
from tuner.engine import parse_rules
from tuner.engine.evaluating import Streaks, evaluate

RULES = parse_rules(
    """
version: 1
rules:
  - {name: slow, when: "duration_p95_ms > 100.0", for: 2, actions: [{action: notify}]}
  - {name: oom, when: "ooms > 0.0", actions: [{action: notify}]}
""",
    "rules.yaml",
)
TARGET = Target(FunctionRef("sim", "f"), FunctionConfig(memory_mb=128), {}, Limits())


def window(**facts: float | None) -> dict[str, float | None]:
    return {"invocations": 10.0, "duration_p95_ms": 50.0, "ooms": 0.0, **facts}


def test_a_rule_fires_after_its_windows_and_resolves_when_data_shows_health() -> None:
    streaks = Streaks()
    fired = [evaluate(RULES, TARGET, window(duration_p95_ms=300.0), streaks, t) for t in (1.0, 2.0)]
    assert [[f.rule for f in found] for found, _ in fired] == [[], ["slow"]]
    assert evaluate(RULES, TARGET, window(duration_p95_ms=None), streaks, 3.0) == ([], [])
    assert evaluate(RULES, TARGET, window(), streaks, 4.0) == ([], ["slow"])
    assert streaks.counts == {}  # nothing holds: the function has no streaks left


def test_a_streak_that_ends_does_not_lose_one_that_starts_in_the_same_window() -> None:
    streaks = Streaks()
    evaluate(RULES, TARGET, window(duration_p95_ms=300.0), streaks, 1.0)
    assert streaks.counts == {"sim:f": {"slow": 1}}
    found, resolved = evaluate(RULES, TARGET, window(ooms=2.0), streaks, 2.0)
    assert [f.rule for f in found] == ["oom"] and resolved == []  # 'slow' never fired
    assert streaks.counts == {"sim:f": {"oom": 1}}
    evaluate(RULES, TARGET, window(ooms=1.0), streaks, 3.0)
    assert streaks.counts == {"sim:f": {"oom": 2}}
