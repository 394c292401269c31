"""The rule engine: rule files, conditions, the fact reference and evaluation."""

from tuner.engine.evaluating import Streaks, evaluate
from tuner.engine.facts import build_facts, fleet_facts
from tuner.engine.reference import FACTS
from tuner.engine.rulefiles import (
    CompiledRule,
    Rule,
    RuleBase,
    load_rules,
    parse_rules,
    rules_schema,
)

__all__ = [
    "FACTS",
    "CompiledRule",
    "Rule",
    "RuleBase",
    "Streaks",
    "build_facts",
    "evaluate",
    "fleet_facts",
    "load_rules",
    "parse_rules",
    "rules_schema",
]
