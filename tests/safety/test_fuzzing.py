"""Property-based fuzzing of rule files and configurations: a clear ConfigError or a result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.safety.harness import DEFAULT_RULES
from tuner.daemon.config import parse_config
from tuner.domain.errors import ConfigError
from tuner.engine import parse_rules

SOURCE = "fuzzed/tuner-input.yaml"
DEFAULT_TEXT = DEFAULT_RULES.read_text(encoding="utf-8")
DEFAULT_LINES = DEFAULT_TEXT.splitlines(keepends=True)

RULE_KEYS = [
    "version",
    "rules",
    "name",
    "description",
    "when",
    "for",
    "actions",
    "action",
    "severity",
    "cooldown",
    "mode",
    "match",
    "labels",
    "provider",
    "advice",
    "notify",
    "group_by",
    "choose",
    "margin",
    "growth",
    "factor",
    "ttl_s",
    "max_s",
    "only_if_cpu_scales",
]
CONFIG_KEYS = [
    "mode",
    "interval",
    "window",
    "rules",
    "store",
    "providers",
    "type",
    "channels",
    "routing",
    "guard",
    "verify",
    "log",
    "windows",
    "max_changes_per_cycle",
    "hysteresis",
    "format",
    "level",
    "min_invocations",
    "error_rate_increase",
    "latency_factor",
]
WORDS = [
    "ooms > 0.0",
    "more-memory",
    "less-memory",
    "critical",
    "10m",
    "1d",
    "-5s",
    "apply",
    "observe",
    "local",
    "1e309",
    "nan",
    ".inf",
    "&a",
    "*a",
    "!!python/object:os.system",
    "{",
    "[",
    "'",
    '"',
    ": ",
    "- ",
    "\t",
    "#",
    "dependencies[",
    "invocations >= 20.0 &&",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(WORDS),
)


def documents(keys: list[str]) -> st.SearchStrategy[Any]:
    """Nested YAML data whose mapping keys are mostly the real ones."""
    key = st.one_of(st.sampled_from(keys), st.text(max_size=6))
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(key, inner, max_size=5)
        ),
        max_leaves=25,
    )


@st.composite
def mutated_default_rules(draw: st.DrawFn) -> str:
    """The bundled rule file with a few lines deleted, duplicated or partly overwritten."""
    lines = list(DEFAULT_LINES)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["delete", "duplicate", "overwrite", "value"]))
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "overwrite":
            at = draw(st.integers(0, len(lines[i])))
            new = draw(st.one_of(st.sampled_from(WORDS), st.text(max_size=5)))
            lines[i] = lines[i][:at] + new + lines[i][at + len(new) :]
        else:
            head, sep, _ = lines[i].partition(": ")
            if sep:
                lines[i] = f"{head}: {draw(st.sampled_from(WORDS))}\n"
        if not lines:
            break
    return "".join(lines)


def _yaml_parses(text: str) -> bool:
    try:
        yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return True


def _check(parse: Callable[[str, str], object], text: str) -> None:
    """Parsing either succeeds or raises ConfigError naming the file, with a line when it can."""
    try:
        parse(text, SOURCE)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError lists at least one problem"
        for problem in exc.problems:
            assert problem.file == SOURCE
            assert problem.message
            assert str(problem).startswith(SOURCE)
            if _yaml_parses(text):
                assert problem.line is not None and problem.line >= 1, str(problem)


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(FUZZ, max_examples=60)
@given(mutated_default_rules())
def test_mutated_default_rules(text: str) -> None:
    """The bundled rules with random damage: never a crash, always a located error."""
    _check(parse_rules, text)


@FUZZ
@given(documents(RULE_KEYS).map(lambda d: {"rules": [d]} if isinstance(d, dict) else d))
def test_generated_rule_files(data: Any) -> None:
    """Random structures with rule-file keys, dumped as YAML."""
    _check(parse_rules, yaml.safe_dump(data))


@FUZZ
@given(documents(CONFIG_KEYS))
def test_generated_configs(data: Any) -> None:
    """Random structures with tuner.yaml keys, dumped as YAML."""
    _check(parse_config, yaml.safe_dump(data))


@FUZZ
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    """Any text at all, as a rule file and as a configuration."""
    _check(parse_rules, text)
    _check(parse_config, text)
