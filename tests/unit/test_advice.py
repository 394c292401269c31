"""Advice is true for the configuration in force: every rule, in every mode."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest

from tuner.decisions.advice import for_finding
from tuner.decisions.guard import Budget, GuardPolicy, guard
from tuner.decisions.planning import plan_finding
from tuner.domain.lifecycle import Verdict
from tuner.domain.model import (
    Change,
    Finding,
    FunctionConfig,
    FunctionRef,
    Knob,
    Limits,
    Mode,
    Target,
)
from tuner.engine import load_rules

ROOT = Path(__file__).resolve().parents[2]
RULES = load_rules([ROOT / "rules" / "default.yaml"])
TARGET = Target(
    FunctionRef("fake", "f"),
    FunctionConfig(memory_mb=256, timeout_s=3.0, batch_size=100, cache_ttl_s=0, concurrency=10),
)
FACTS = {
    "invocations": 100.0,
    "errors": 30.0,
    "error_rate": 0.3,
    "ooms": 5.0,
    "oom_rate": 0.05,
    "timeouts": 10.0,
    "timeout_rate": 0.1,
    "timeout_ms": 3000.0,
    "peak_memory_mb": 250.0,
    "duration_p95_ms": 2900.0,
    "duration_p99_ms": 2990.0,
    "duration_max_ms": 3000.0,
    "memory_mb": 256.0,
    "memory_utilisation": 0.2,
    "throttles": 3.0,
}


def _rule_modes() -> list[Mode | None]:
    return [None, *Mode]


@pytest.mark.parametrize(
    ("global_mode", "rule_mode"), list(itertools.product(list(Mode), _rule_modes()))
)
def test_recommendations_say_how_to_let_tuner_apply_them_truthfully(
    global_mode: Mode, rule_mode: Mode | None
) -> None:
    for compiled in RULES.rules:
        rule = compiled.rule.model_copy(update={"mode": rule_mode})
        compiled = replace(compiled, rule=rule)
        finding = Finding(TARGET.ref, rule.name, rule.severity, FACTS, 0.0)
        planned = plan_finding(compiled, finding, TARGET, global_mode, 0.0)
        for d in guard(planned, Budget.start([], {}, GuardPolicy(), 0.0)):
            if d.verdict is not Verdict.RECOMMEND:
                assert "let tuner do it" not in d.advice, (rule.name, d.advice)
                continue
            assert d.change is not None and d.change.describe() in d.advice
            says_global = "`mode: apply` in tuner.yaml" in d.advice
            says_rule = "remove the rule's own `mode`" in d.advice
            assert says_global is (global_mode is not Mode.APPLY), (rule.name, d.advice)
            assert says_rule is (rule_mode not in (None, Mode.APPLY)), (rule.name, d.advice)


@pytest.mark.parametrize(
    ("knob", "before", "after", "advised"),
    [
        (None, None, None, True),
        ("timeout_s", 3.0, 6.0, True),
        ("batch_size", 100, 50, False),
        ("cache_ttl_s", 0, 300, False),
    ],
)
def test_decomposition_is_advised_where_tuner_does_not_decompose(
    knob: str | None, before: float | None, after: float | None, advised: bool
) -> None:
    facts = {**FACTS, "duration_timeout_ratio": 1.0}
    change = Change(Knob(knob), before, after) if knob and after is not None else None
    advice = " ".join(for_finding(facts, change, TARGET.config, Limits(), Mode.APPLY, None))
    assert ("Decompose the work: smaller batches than 100 records" in advice) is advised
    assert "10% of the invocations hit the 3 s timeout" in advice or not advised


def test_a_fan_out_is_not_advised_for_events_that_do_not_split() -> None:
    facts = {**FACTS, "duration_timeout_ratio": 1.0, "extra": {"split_share": 0.0}}
    config = replace(TARGET.config, batch_size=None, fan_out=1)
    advice = " ".join(for_finding(facts, None, config, Limits(), Mode.APPLY, None))
    assert "a continuation that hands its state over; its events are not lists" in advice
    assert "a fan-out over more than" not in advice
    lists = {**facts, "extra": {"split_share": 1.0}}
    advice = " ".join(for_finding(lists, None, config, Limits(), Mode.APPLY, None))
    assert "Decompose the work: a fan-out over more than 1 parts" in advice
