"""Conditions: parsing, typing, three-valued evaluation, the cost budget, and agreement with CEL."""

from __future__ import annotations

import math

import cel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.engine.conditions import ConditionError, compile_condition, compile_node, parse
from tuner.engine.reference import FACT_TYPES

FACTS = {
    "ooms": 2.0,
    "invocations": 100.0,
    "memory_mb": 128.0,
    "peak_memory_mb": 127.0,
    "timeouts": 0.0,
    "duration_p99_ms": None,
    "function": "resize",
    "labels": {"team": "payments"},
    "cache_enabled": False,
    "dependencies": {"orders-db": {"calls": 10.0, "errors": 9.0, "error_rate": 0.9}},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("ooms > 0.0", True),
        ("ooms > 0", True),
        ("ooms > 2.0", False),
        ("peak_memory_mb >= 0.95 * memory_mb", True),
        ("ooms / invocations > 0.01", True),
        ("timeouts / invocations > 0.0", False),
        ("invocations / timeouts > 1.0", None),  # division by zero is "unknown"
        ("-ooms < 0.0", True),
        ("!(ooms > 0.0)", False),
        ("ooms > 0.0 ? memory_mb > 100.0 : false", True),
        ("function == 'resize'", True),
        ('function in ["resize", "thumb"]', True),
        ("labels.team == 'payments'", True),
        ("labels.missing == 'x'", None),
        ('dependencies["orders-db"].error_rate > 0.5', True),
        ("has(dependencies.other)", False),
        ("size(dependencies) == 1.0", True),
        ("cache_enabled == false", True),
        ("duration_p99_ms == null", True),
        ("duration_p99_ms != null", False),
        ("ooms == null", False),
        ("ooms != null", True),
        ("timeouts != 0.0", False),
        ("duration_p99_ms == 100.0", None),
        ("duration_p99_ms != 100.0", None),
        ("1.0 == 1.0", True),
        ("null == ooms", False),
        ("null != duration_p99_ms", False),
        ("ooms == timeouts", False),
        ("duration_p99_ms == timeouts", None),  # one side unknown
        ("duration_p99_ms == duration_p99_ms", True),  # both unknown: equal
        ("labels.team < 5.0", None),  # a label is text: not comparable with a number
        ("labels.team < 'q'", True),
        ("-labels.missing > 1.0", None),
        ("(ooms > 0.0 ? labels.team : 'x') == 'payments'", True),
        ("size(dependencies) / 0.0 > 1.0", None),
        # three-valued logic: missing data is never a reason to act
        ("duration_p99_ms > 100.0", None),
        ("!(duration_p99_ms > 100.0)", None),
        ("duration_p99_ms > 100.0 && ooms > 0.0", None),
        ("duration_p99_ms > 100.0 && ooms > 5.0", False),
        ("duration_p99_ms > 100.0 || ooms > 0.0", True),
        ("duration_p99_ms > 100.0 || ooms > 5.0", None),
        ("duration_p99_ms * 2.0 > 1.0", None),
    ],
)
def test_evaluation(source: str, expected: object) -> None:
    condition = compile_condition(source, FACT_TYPES)
    assert condition.evaluate(FACTS) is expected
    assert condition.holds(FACTS) is (expected is True)
    # Without the facts' types (as explanations compile clauses) every operator is guarded.
    assert compile_node(parse(source))(FACTS) is expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("ooms >", "expected"),
        ("ooms > 0.0 &&", "unexpected"),
        ("oomz > 0.0", "unknown fact 'oomz' (did you mean 'ooms'?)"),
        ("__import__('os')", "names starting with '_' are not allowed"),
        ("labels.__class__", "names starting with '_' are not allowed"),
        ("ooms.__class__ == 1.0", "names starting with '_'"),
        ("eval('1')", "unknown function 'eval'"),
        ("ooms > 'a'", "needs number"),
        ("function > 1.0", "needs string"),
        ("ooms && true", "needs bool"),
        ("ooms + 1.0", "must be true or false"),
        ("ooms > 0.0 $ 1", "unexpected character"),
        ("ooms" + " + ooms" * 150 + " > 0.0", "too large"),
        ("(" * 40 + "ooms > 0.0" + ")" * 40, "nested too deeply"),
        ("!" * 60 + "true", "nested too deeply"),
        ("ooms > " + "1" * 3000, "too long"),
    ],
)
def test_rejected(source: str, message: str) -> None:
    with pytest.raises(ConditionError) as err:
        compile_condition(source, FACT_TYPES)
    assert message in str(err.value)


def test_facts_read_are_listed() -> None:
    condition = compile_condition("ooms > 0.0 && peak_memory_mb > 0.9 * memory_mb", FACT_TYPES)
    assert condition.facts == {"ooms", "peak_memory_mb", "memory_mb"}


# ---------------------------------------------------------------- agreement with CEL

NAMES = ["a", "b", "c"]
numbers = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda x: round(x, 3))


@st.composite
def arithmetic(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 1 or draw(st.booleans()):
        if draw(st.booleans()):
            return draw(st.sampled_from(NAMES))
        return repr(float(draw(numbers)))
    op = draw(st.sampled_from(["+", "-", "*"]))
    return f"({draw(arithmetic(depth + 1))} {op} {draw(arithmetic(depth + 1))})"


@st.composite
def boolean(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 1 or draw(st.booleans()):
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
        return f"{draw(arithmetic())} {op} {draw(arithmetic())}"
    kind = draw(st.sampled_from(["&&", "||", "!", "?:"]))
    if kind == "!":
        return f"!({draw(boolean(depth + 1))})"
    if kind == "?:":
        return f"({draw(boolean(depth + 1))} ? {draw(boolean(depth + 1))} : {draw(boolean(depth + 1))})"
    return f"({draw(boolean(depth + 1))} {kind} {draw(boolean(depth + 1))})"


@settings(max_examples=300, deadline=None)
@given(source=boolean(), values=st.tuples(numbers, numbers, numbers))
def test_agrees_with_the_reference_cel(source: str, values: tuple[float, float, float]) -> None:
    """On the shared subset (doubles, comparisons, logic) tuner's result equals CEL's."""
    facts = {name: float(v) for name, v in zip(NAMES, values, strict=True)}
    types = {name: FACT_TYPES["ooms"] for name in NAMES}
    ours = compile_condition(source, types).evaluate(facts)
    try:
        theirs = cel.evaluate(source, facts)
    except Exception:  # noqa: BLE001 - CEL errors (e.g. overflow) are outside the shared subset
        return
    if isinstance(theirs, float) and math.isnan(theirs):
        return
    assert ours == theirs, source
