"""Rule files: the typed models, YAML loading with line numbers, and compilation.

A rule file looks like this::

    rules:
      - name: oom
        description: The function ran out of memory.
        match: {provider: "*", name: "*", labels: {team: payments}}
        when: ooms > 0.0
        for: 1
        actions:
          - action: more-memory
            margin: 0.2
        severity: critical
        cooldown: 10m
        advice: Look at what the function holds in memory per record.

Every problem is reported as ``file:line: rule 'name': field 'f': message``; loading
collects all problems of a file instead of stopping at the first.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tuner.domain.durations import Duration
from tuner.domain.errors import ConfigError, Problem
from tuner.domain.model import Mode, Severity, Target
from tuner.engine.actions import Action
from tuner.engine.conditions import Condition, ConditionError, compile_condition
from tuner.engine.locating import located_problems
from tuner.engine.reference import FACT_TYPES
from tuner.engine.yamlfiles import load_mapping, read_text


class Match(BaseModel):
    """Which functions a rule applies to; every given part must match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = Field("*", description="Provider name or glob.")
    name: str = Field("*", description="Function name glob, e.g. 'orders-*'.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels that must be equal.")

    def matches(self, target: Target) -> bool:
        """True when the target satisfies every part of the match."""
        return self.matcher()(target)

    def matcher(self) -> Callable[[Target], bool]:
        """:meth:`matches` with its globs compiled once, for evaluation to call per function."""
        provider, name = _glob(self.provider), _glob(self.name)
        labels = tuple(self.labels.items())

        def matches(target: Target) -> bool:
            ref = target.ref
            return (
                provider(ref.provider)
                and name(ref.name)
                and all(target.labels.get(k) == v for k, v in labels)
            )

        return matches


def _glob(pattern: str) -> Callable[[str], bool]:
    """A test of a name against a glob: equality where the pattern has no wildcard."""
    if pattern == "*":
        return lambda _: True
    if not any(c in pattern for c in "*?["):
        return pattern.__eq__
    regex = re.compile(fnmatch.translate(pattern))
    return lambda text: regex.match(text) is not None


RESOLVE_WHEN = "invocations >= 5.0"
"""Enough traffic to judge that a problem is gone, unless a rule says otherwise."""


class Rule(BaseModel):
    """One rule: when its condition holds for enough windows, its actions run."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=63)
    description: str = ""
    match: Match = Field(default_factory=Match)
    when: str = Field(description="A CEL condition over the window facts.", max_length=2000)
    for_windows: int = Field(1, alias="for", ge=1, le=1000, description="Consecutive windows.")
    actions: list[Action] = Field(min_length=1)
    choose: Literal["all", "first"] = Field(
        "all", description="'first': use only the first action that can apply."
    )
    severity: Severity = Severity.WARNING
    cooldown: Duration = Field(900.0, description="Minimum time between changes of one knob.")
    mode: Mode | None = Field(None, description="Stricter mode for this rule only.")
    advice: str = Field("", description="What a person should do; goes into every message.")
    notify: list[str] = Field(default_factory=list, description="Channel names.")
    group_by: Literal["function", "rule", "dependency"] = "function"
    resolve_when: str = Field(
        RESOLVE_WHEN,
        description="What a window must show, besides the condition no longer holding, for a "
        "rule that fired to resolve: enough traffic to judge. A window where it does not hold "
        "keeps the rule's streak as it is, as a window without traffic does.",
        max_length=2000,
    )


class RuleFile(BaseModel):
    """The top level of a rule file."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    rules: list[Rule] = Field(default_factory=list)


@dataclass(frozen=True)
class CompiledRule:
    """A validated rule with its condition compiled."""

    rule: Rule
    condition: Condition
    source: str
    line: int
    resolve: Condition
    """What a window must show for the rule, once fired, to resolve (``resolve_when``)."""

    @property
    def name(self) -> str:
        """The rule's name."""
        return self.rule.name

    @cached_property
    def matches_all(self) -> bool:
        """True when the rule's match selects every function (the common case, skipped fast)."""
        m = self.rule.match
        return m.provider == "*" and m.name == "*" and not m.labels


@dataclass(frozen=True)
class RuleBase:
    """The rules in force, in file order, with where they came from."""

    rules: tuple[CompiledRule, ...]
    files: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rules)

    def by_name(self, name: str) -> CompiledRule | None:
        """The rule with this name, if any."""
        return next((r for r in self.rules if r.name == name), None)

    @cached_property
    def steps(self) -> tuple[Step, ...]:
        """Each rule as evaluation reads it, in order: looked up once, not per function."""
        return tuple(
            Step(
                r.rule.name,
                r.rule.for_windows,
                r.rule.severity,
                r.condition.evaluate,
                None if r.matches_all else r.rule.match.matcher(),
                r.resolve.evaluate,
            )
            for r in self.rules
        )


class Step(NamedTuple):
    """One rule as evaluation reads it (see :attr:`RuleBase.steps`)."""

    name: str
    for_windows: int
    severity: Severity
    holds: Callable[[Mapping[str, Any]], Any]
    matches: Callable[[Target], bool] | None
    """None when the rule selects every function."""
    shows_health: Callable[[Mapping[str, Any]], Any]
    """True when a window has enough to say the problem is gone (``resolve_when``)."""


# ---------------------------------------------------------------- loading


def parse_rules(text: str, source: str) -> RuleBase:
    """Validate and compile the rules in one file's text; raise ConfigError with every problem."""
    data, lines = load_mapping(text, source, "a rule file is a mapping with a 'rules' list")
    problems: list[Problem] = []
    raw_rules = data.get("rules", [])
    try:
        RuleFile.model_validate({**data, "rules": []})
    except ValidationError as exc:
        problems.extend(located_problems(exc, source, lines, data, model=RuleFile, rule_file=True))
    if not isinstance(raw_rules, list):
        problems.append(
            Problem(source, lines.get(("rules",)), "'rules' must be a list", field="rules")
        )
        raw_rules = []
    compiled: list[CompiledRule] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_rules):
        line = lines.get(("rules", i), 0)
        try:
            rule = Rule.model_validate(raw)
        except ValidationError as exc:
            problems.extend(
                located_problems(
                    exc, source, lines, data, model=Rule, prefix=("rules", i), rule_file=True
                )
            )
            if isinstance(raw, dict):
                name = str(raw.get("name", f"#{i + 1}"))
                for field in ("when", "resolve_when"):
                    if isinstance(raw.get(field), str):
                        problems.extend(
                            _condition_problems(raw[field], source, lines, i, name, field)
                        )
            continue
        if rule.name in seen:
            problems.append(
                Problem(
                    source,
                    line,
                    f"duplicate rule name (first at line {seen[rule.name]})",
                    rule.name,
                    "name",
                )
            )
            continue
        seen[rule.name] = line
        try:
            condition = compile_condition(rule.when, FACT_TYPES)
            resolve = compile_condition(rule.resolve_when, FACT_TYPES)
        except ConditionError:
            for field in ("when", "resolve_when"):
                problems.extend(
                    _condition_problems(getattr(rule, field), source, lines, i, rule.name, field)
                )
            continue
        compiled.append(CompiledRule(rule, condition, source, line, resolve))
    if problems:
        raise ConfigError(problems)
    return RuleBase(tuple(compiled), (source,))


def _condition_problems(
    when: str,
    source: str,
    lines: Mapping[tuple[Any, ...], int],
    index: int,
    rule: str,
    field: str = "when",
) -> list[Problem]:
    try:
        compile_condition(when, FACT_TYPES)
    except ConditionError as exc:
        line = lines.get(("rules", index, field), lines.get(("rules", index)))
        return [Problem(source, line, str(exc), rule, field)]
    return []


def load_rules(paths: Sequence[str | Path]) -> RuleBase:
    """Load rule files (or directories of ``*.yaml``) into one rule base.

    Rule names must be unique across files.  Raises ConfigError listing every problem.
    """
    problems: list[Problem] = []
    rules: list[CompiledRule] = []
    files: list[str] = []
    for path in yaml_files(paths):
        files.append(str(path))
        try:
            base = parse_rules(read_text(path), str(path))
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        rules.extend(base.rules)
    first: dict[str, CompiledRule] = {}
    for r in rules:
        if r.name in first:
            other = first[r.name]
            problems.append(
                Problem(
                    r.source,
                    r.line,
                    f"duplicate rule name (also at {other.source}:{other.line})",
                    r.name,
                    "name",
                )
            )
        else:
            first[r.name] = r
    if problems:
        raise ConfigError(problems)
    return RuleBase(tuple(first.values()), tuple(files))


def yaml_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files named, with each folder replaced by the ``*.yaml`` files in it, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(sorted(p.glob("*.yaml")) if p.is_dir() else [p])
    return out


def rules_schema() -> dict[str, Any]:
    """The JSON Schema of rule files, generated from the models above."""
    schema = RuleFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tuner rule file"
    return schema
