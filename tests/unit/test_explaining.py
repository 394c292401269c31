"""Explaining a condition clause by clause: values, three-valued results, the text shown."""

from __future__ import annotations

import pytest

from tuner.engine.conditions import parse
from tuner.engine.explaining import explain, fact_value, render
from tuner.engine.expressions import fact_names

DATA_LATENCY = (
    "dependency_latency_p95_ms > 200.0 && cache_enabled == false"
    " && (dependency_error_rate == null || dependency_error_rate < 0.5)"
)


def test_each_top_level_clause_has_its_value_and_the_facts_it_read() -> None:
    e = explain(
        "ooms > 0.0 && peak_memory_mb >= 0.9 * memory_mb",
        {"ooms": 0.0, "peak_memory_mb": 120.0, "memory_mb": 128.0},
    )
    assert e.joiner == "&&" and e.value is False and e.status == "does not hold"
    first, second = e.clauses
    assert (first.text, first.value, dict(first.facts)) == ("ooms > 0.0", False, {"ooms": 0.0})
    assert first.operands == (0.0, 0.0)
    assert second.text == "peak_memory_mb >= 0.9 * memory_mb"
    assert second.value is True and second.operands == (120.0, pytest.approx(115.2))
    assert dict(second.facts) == {"memory_mb": 128.0, "peak_memory_mb": 120.0}


@pytest.mark.parametrize(
    ("facts", "value", "statuses"),
    [
        (
            {
                "dependency_latency_p95_ms": 300.0,
                "cache_enabled": False,
                "dependency_error_rate": None,
            },
            True,
            ["holds", "holds", "holds"],
        ),
        (
            {
                "dependency_latency_p95_ms": None,
                "cache_enabled": False,
                "dependency_error_rate": 0.1,
            },
            None,
            ["no data", "holds", "holds"],
        ),
        (
            {
                "dependency_latency_p95_ms": None,
                "cache_enabled": True,
                "dependency_error_rate": 0.9,
            },
            False,
            ["no data", "does not hold", "does not hold"],
        ),
    ],
)
def test_missing_data_is_no_data_and_false_beats_it(
    facts: dict[str, object], value: object, statuses: list[str]
) -> None:
    e = explain(DATA_LATENCY, facts)
    assert e.value is value
    assert [c.status for c in e.clauses] == statuses


def test_a_parenthesised_group_is_explained_part_by_part() -> None:
    e = explain(DATA_LATENCY, {"dependency_error_rate": 0.7})
    group = e.clauses[2]
    assert group.joiner == "||" and group.value is False
    assert [(p.text, p.status) for p in group.parts] == [
        ("dependency_error_rate == null", "does not hold"),
        ("dependency_error_rate < 0.5", "does not hold"),
    ]


def test_an_or_condition_is_split_at_its_ors() -> None:
    e = explain("timeout_rate > 0.01 || duration_timeout_ratio > 0.9", {"timeout_rate": 0.0})
    assert e.joiner == "||" and e.value is None  # false || null is null: no data
    assert [c.status for c in e.clauses] == ["does not hold", "no data"]


def test_a_single_comparison_is_one_clause() -> None:
    e = explain("throttles > 0.0", {"throttles": 2.0})
    assert e.joiner == "" and [c.text for c in e.clauses] == ["throttles > 0.0"]
    assert e.to_json()["clauses"][0]["status"] == "holds"


@pytest.mark.parametrize(
    "source",
    [
        DATA_LATENCY,
        "a + b * c > 1.0 && !(x || y)",
        "(a + b) * c > 1.0",
        "a - (b - c) > 0.0",
        'labels.team == "payments" && dependencies["orders-db"].error_rate > 0.5',
        "has(labels.team) ? size(labels) > 1.0 : -a < 2.0",
        'function in ["a", "b"] && double(x) >= 1e3',
    ],
)
def test_rendered_text_parses_back_to_the_same_tree(source: str) -> None:
    tree = parse(source)
    assert _shape(parse(render(tree))) == _shape(tree)


def _shape(node: object) -> object:
    return (node.op, node.value, tuple(_shape(a) for a in node.args))  # type: ignore[attr-defined]


def test_a_clause_shows_the_field_it_reads_not_the_whole_mapping() -> None:
    tree = parse("ooms > 0.0 && !has(extra.probe_pending) && dependencies['db'].calls > 1.0")
    assert fact_names(tree) == {"ooms", "extra.probe_pending", "dependencies.db"}
    facts = {"ooms": 2.0, "extra": {"probe_pending": 1.0}, "dependencies": {}}
    assert fact_value(facts, "extra.probe_pending") == 1.0
    assert fact_value(facts, "dependencies.db") is None
    assert fact_value(facts, "ooms") == 2.0
    assert fact_value(facts, "missing.x") is None
