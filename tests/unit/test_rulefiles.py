"""Rule files: every kind of bad input gets a located error; the schema and examples stay current."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from tuner import engine
from tuner.cli.reference import schema_text
from tuner.daemon import config
from tuner.domain.errors import ConfigError
from tuner.engine import actions, load_rules, parse_rules
from tuner.engine.rulefiles import rules_schema

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
rules:
  - name: oom
    when: ooms > 0.0
    actions:
      - action: more-memory
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_rules(textwrap.dedent(text), "rules/team.yaml")
    return [str(p) for p in err.value.problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("more-memory", "more-memroy"),
            "rules/team.yaml:5: rule 'oom': field 'actions': unknown action 'more-memroy' "
            "(did you mean 'more-memory'?)",
        ),
        ("rules:\n  - name: oom\n    when: [ooms\n", "rules/team.yaml:4: invalid YAML"),
        (
            GOOD + "    colour: red\n",
            "rules/team.yaml:6: rule 'oom': field 'colour': unknown key 'colour'",
        ),
        (
            GOOD.replace("ooms > 0.0", "oomz > 0.0"),
            "rules/team.yaml:3: rule 'oom': field 'when': unknown fact 'oomz'",
        ),
        (
            GOOD.replace("ooms > 0.0", "ooms > 'many'"),
            "rules/team.yaml:3: rule 'oom': field 'when': operator '>' needs number",
        ),
        (
            GOOD + "    for: many\n",
            "rules/team.yaml:6: rule 'oom': field 'for': Input should be a valid integer",
        ),
        (
            GOOD + "    cooldown: soon\n",
            "rules/team.yaml:6: rule 'oom': field 'cooldown': Value error, not a duration",
        ),
        (
            GOOD + "      - action: more-memory\n        margin: -1\n",
            "rules/team.yaml:7: rule 'oom': field 'actions.margin'",
        ),
        (
            GOOD + GOOD.replace("rules:\n", ""),
            "rules/team.yaml:6: rule 'oom': field 'name': duplicate rule name (first at line 2)",
        ),
        (
            GOOD.replace("ooms > 0.0", "__import__('os').system('id')"),
            "field 'when': names starting with '_' are not allowed",
        ),
        (
            GOOD.replace("ooms > 0.0", "labels.__class__ == 1.0"),
            "names starting with '_' are not allowed",
        ),
        (GOOD.replace("ooms > 0.0", "(" * 50 + "ooms > 0.0" + ")" * 50), "nested too deeply"),
        (GOOD.replace("ooms > 0.0", " + ".join(["ooms"] * 150) + " > 0.0"), "too large"),
        (
            GOOD.replace("name: oom", "name: Bad Name"),
            "rule 'Bad Name': field 'name': String should match pattern",
        ),
        (
            GOOD.replace("      - action: more-memory\n", "      - margin: 0.2\n"),
            "an action needs an 'action' field",
        ),
        ("rules: 3\n", "rules/team.yaml:1: field 'rules': 'rules' must be a list"),
        ("- a\n- b\n", "a rule file is a mapping"),
        ("rules:\n  - name: a\n    name: b\n", "duplicate key 'name'"),
        ("? {a: b}\n: c\n", "rules/team.yaml:1: invalid YAML: a key must be a plain value"),
        (
            GOOD + "    mode: yolo\n",
            "field 'mode': Input should be 'observe', 'recommend' or 'apply'",
        ),
    ],
)
def test_bad_rule_files_are_located(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def test_all_problems_of_a_file_are_reported_at_once() -> None:
    text = (
        GOOD
        + "    colour: red\n"
        + GOOD.replace("rules:\n", "")
        .replace("name: oom", "name: oom2")
        .replace("ooms >", "oomz >")
    )
    found = problems(text)
    assert len(found) == 2
    assert "colour" in found[0] and "oomz" in found[1]


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(ConfigError) as err:
        load_rules([tmp_path])
    assert "duplicate rule name (also at" in str(err.value)
    assert str(tmp_path / "b.yaml") + ":2" in str(err.value)


def test_bundled_rules_load_and_cover_the_seed_proposal() -> None:
    rules = load_rules([ROOT / "rules" / "default.yaml"])
    names = {r.name for r in rules.rules}
    assert {
        "oom",
        "timeout",
        "data-latency",
        "dependency-down",
        "right-size",
        "throttling",
    } <= names
    down = rules.by_name("dependency-down")
    assert down is not None
    assert [a.action for a in down.rule.actions] == ["notify"]  # never redeploy for an outage
    right_size = rules.by_name("right-size")
    assert right_size is not None and right_size.rule.mode == "recommend"


def test_schema_file_is_current() -> None:
    assert (ROOT / "rules" / "schema.json").read_text() == schema_text(), "run 'tuner schema'"


def test_schema_accepts_the_bundled_rules_and_rejects_a_typo() -> None:
    schema = rules_schema()
    data = yaml.safe_load((ROOT / "rules" / "default.yaml").read_text())
    jsonschema.validate(data, schema)
    data["rules"][0]["actions"][0]["action"] = "more-memroy"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def _yaml_examples(obj: object) -> list[str]:
    doc = getattr(obj, "__doc__", None) or ""
    blocks = re.findall(r"::\n\n((?:(?:        |    ).*\n|\n)+)", doc + "\n")
    return [textwrap.dedent(b) for b in blocks]


ACTION_EXAMPLES = [
    (e.name, ex) for e in actions.ACTIONS.entries() for ex in _yaml_examples(e.load())
]


def test_every_action_documents_an_example() -> None:
    assert {name for name, _ in ACTION_EXAMPLES} == set(actions.ACTIONS)


@pytest.mark.parametrize(("name", "example"), ACTION_EXAMPLES, ids=[n for n, _ in ACTION_EXAMPLES])
def test_action_examples_load(name: str, example: str) -> None:
    indented = textwrap.indent(example, "      ")
    text = f"rules:\n  - name: example\n    when: ooms > 0.0\n    actions:\n{indented}"
    base = parse_rules(text, f"{name} docstring")
    assert base.rules[0].rule.actions[0].action == name


def test_module_examples_load(tmp_path: Path) -> None:
    rule_example = _yaml_examples(engine.rulefiles)[0]
    assert parse_rules(rule_example, "rulefiles docstring").rules[0].name == "oom"
    config_example = _yaml_examples(config)[0]
    cfg = config.parse_config(config_example, str(tmp_path / "tuner.yaml"))
    assert cfg.mode == "apply" and cfg.interval == 30.0


def test_documented_examples_in_docs_load() -> None:
    """Every ```yaml block under docs/ and the README that holds rules must load."""
    checked = 0
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if not path.exists():
            continue
        for block in re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S):
            data = yaml.safe_load(block)
            if (
                isinstance(data, dict)
                and isinstance(data.get("rules"), list)
                and data["rules"]
                and isinstance(data["rules"][0], dict)
            ):
                parse_rules(block, str(path))
                checked += 1
    assert checked >= 1


def test_schema_is_json() -> None:
    json.loads(schema_text())


@pytest.mark.parametrize(
    ("match", "provider", "name", "labels", "expected"),
    [
        ({"provider": "local"}, "local", "f", {}, True),
        ({"provider": "local"}, "localhost", "f", {}, False),
        ({"name": "orders-*"}, "aws", "orders-sync", {}, True),
        ({"name": "orders-*"}, "aws", "order", {}, False),
        ({"name": "orders-?"}, "aws", "orders-1", {}, True),
        ({"name": "[ab]*"}, "aws", "beta", {}, True),
        ({"name": "[ab]*"}, "aws", "gamma", {}, False),
        ({"labels": {"team": "pay"}}, "aws", "f", {"team": "pay"}, True),
        ({"labels": {"team": "pay"}}, "aws", "f", {}, False),
        ({"provider": "aws", "labels": {"team": "pay"}}, "k8s", "f", {"team": "pay"}, False),
    ],
)
def test_a_rule_applies_to_the_functions_its_match_selects(
    match: dict[str, object], provider: str, name: str, labels: dict[str, str], expected: bool
) -> None:
    from tuner.domain.model import FunctionConfig, FunctionRef, Limits, Target

    rule = parse_rules(
        yaml.safe_dump(
            {
                "rules": [
                    {
                        "name": "r",
                        "match": match,
                        "when": "ooms > 0.0",
                        "actions": [{"action": "notify"}],
                    }
                ]
            }
        ),
        "r.yaml",
    ).rules[0]
    target = Target(FunctionRef(provider, name), FunctionConfig(memory_mb=128), labels, Limits())
    assert rule.rule.match.matches(target) is expected
    assert rule.matches_all is False
