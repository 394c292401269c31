"""Rule conditions: a safe subset of CEL compiled once into Python closures.

A condition such as ``ooms > 0.0 && peak_memory_mb >= 0.9 * memory_mb`` is parsed by a
small Pratt parser into a tree, type-checked against the fact reference, and turned into
nested closures.  Nothing is ever passed to ``eval``; the only names a condition can reach
are the documented facts and the functions listed in :data:`FUNCTIONS`, so no Python
object, attribute or module is reachable.

Why not a CEL library: the reference bindings convert every fact from Python to Rust on
each call, which measured ~18,000 evaluations/s with a realistic set of 40 facts; tuner
needs over 1,000,000/s.  The grammar is a strict subset of CEL, and a test checks that the
results agree with the reference implementation.

Missing data is ``null``, with three-valued logic: a comparison or arithmetic with
``null`` is ``null``, ``false && null`` is ``false``, ``true || null`` is ``true``, and a
rule fires only when its condition is exactly ``true``.  So no data is never a reason to act.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tuner.engine.expressions import ConditionError, Node, fact_names, flatten, parse

__all__ = ["Condition", "ConditionError", "Type", "compile_condition", "parse"]

Facts = Mapping[str, Any]
Evaluator = Callable[[Facts], Any]


class Type(enum.Enum):
    """Static types of condition values."""

    NUMBER = "number"
    STRING = "string"
    BOOL = "bool"
    MAP = "map"
    LIST = "list"
    NULL = "null"
    ANY = "any"


# ---------------------------------------------------------------- functions


def _size(x: Any) -> float | None:
    return None if x is None else float(len(x))


def _double(x: Any) -> float | None:
    if x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


FUNCTIONS: Mapping[str, tuple[Callable[..., Any], tuple[Type, ...], Type]] = {
    "size": (_size, (Type.ANY,), Type.NUMBER),
    "double": (_double, (Type.ANY,), Type.NUMBER),
}
"""Functions a condition may call: name -> (implementation, argument types, result type).

``has(x.field)`` is also accepted: true when the field exists and is not null.
"""


# ---------------------------------------------------------------- type checking


def check(node: Node, fact_types: Mapping[str, Type]) -> Type:
    """Infer the type of a condition tree, raising on unknown names and type errors."""
    op = node.op
    if op == "const":
        v = node.value
        if v is None:
            return Type.NULL
        if isinstance(v, bool):
            return Type.BOOL
        return Type.NUMBER if isinstance(v, float) else Type.STRING
    if op == "fact":
        if node.value not in fact_types:
            raise ConditionError(
                f"unknown fact {node.value!r}{_suggest(node.value, fact_types)}", node.pos
            )
        return fact_types[node.value]
    if op == "list":
        for item in node.args:
            check(item, fact_types)
        return Type.LIST
    if op == "index":
        base = check(node.args[0], fact_types)
        check(node.args[1], fact_types)
        _expect(base, {Type.MAP, Type.LIST}, "indexing", node)
        return Type.ANY
    if op == "call":
        return _check_call(node, fact_types)
    types = [check(a, fact_types) for a in node.args]
    if op in ("&&", "||", "!"):
        for t in types:
            _expect(t, {Type.BOOL}, f"operator {op!r}", node)
        return Type.BOOL
    if op == "?:":
        _expect(types[0], {Type.BOOL}, "the condition of '?:'", node)
        return types[1] if types[1] == types[2] else Type.ANY
    if op in ("+", "-", "*", "/", "%", "neg"):
        for t in types:
            _expect(t, {Type.NUMBER}, f"operator {op if op != 'neg' else '-'!r}", node)
        return Type.NUMBER
    if op in ("<", "<=", ">", ">="):
        left, right = types
        _expect(left, {Type.NUMBER, Type.STRING}, f"operator {op!r}", node)
        _expect(right, {left}, f"operator {op!r}", node)
        return Type.BOOL
    if op in ("==", "!="):
        left, right = types
        if Type.NULL not in (left, right):
            _expect(right, {left}, f"operator {op!r}", node)
        return Type.BOOL
    if op == "in":
        _expect(types[1], {Type.LIST, Type.MAP}, "the right side of 'in'", node)
        return Type.BOOL
    raise ConditionError(f"unsupported operator {op!r}", node.pos)  # pragma: no cover


def _check_call(node: Node, fact_types: Mapping[str, Type]) -> Type:
    name = node.value
    if name == "has":
        if len(node.args) != 1 or node.args[0].op != "index":
            raise ConditionError(
                "has() takes one field selection, e.g. has(dependencies.db)", node.pos
            )
        check(node.args[0], fact_types)
        return Type.BOOL
    if name not in FUNCTIONS:
        raise ConditionError(f"unknown function {name!r}{_suggest(name, FUNCTIONS)}", node.pos)
    _, arg_types, result = FUNCTIONS[name]
    if len(node.args) != len(arg_types):
        raise ConditionError(f"{name}() takes {len(arg_types)} argument(s)", node.pos)
    for arg, want in zip(node.args, arg_types, strict=True):
        _expect(check(arg, fact_types), {want}, f"{name}()", node)
    return result


def _expect(got: Type, allowed: set[Type], what: str, node: Node) -> None:
    if got in (Type.ANY, Type.NULL) or Type.ANY in allowed or got in allowed:
        return
    names = " or ".join(sorted(t.value for t in allowed))
    raise ConditionError(f"{what} needs {names}, not {got.value}", node.pos)


def _suggest(name: str, known: Mapping[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------- compiling


def _num_op(fn: Callable[[Any, Any], Any]) -> Callable[[Evaluator, Evaluator], Evaluator]:
    def make(left: Evaluator, right: Evaluator) -> Evaluator:
        def run(f: Facts) -> Any:
            a = left(f)
            if a is None:
                return None
            b = right(f)
            if b is None:
                return None
            try:
                return fn(a, b)
            except (ZeroDivisionError, TypeError):
                return None

        return run

    return make


def _const_cmp(fn: Callable[[Any, Any], Any], name: str, c: Any) -> Evaluator:
    """The hot path: a fact compared with a constant, e.g. ``ooms > 0.0``."""

    def run(f: Facts) -> Any:
        v = f.get(name)
        return None if v is None else fn(v, c)

    return run


def _const_eq(name: str, c: Any, negate: bool) -> Evaluator:
    """The hot path of ``==`` and ``!=``: a fact against a constant, e.g. ``ooms == 0.0``.

    Against ``null`` it asks whether the fact is missing; otherwise a missing fact is unknown.
    """
    if c is None:
        return lambda f: (f.get(name) is None) != negate

    def run(f: Facts) -> Any:
        v = f.get(name)
        return None if v is None else (v == c) != negate

    return run


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def _mod(a: float, b: float) -> float | None:
    return a % b if b else None


_ARITH: Mapping[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _div,
    "%": _mod,
    "<": operator.lt,  # the operator module's: no Python frame per comparison
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


_COMPARISONS = frozenset({"<", "<=", ">", ">="})


def _kleene(parts: list[Evaluator], decisive: bool) -> Evaluator:
    """``&&`` (decisive False) or ``||`` (decisive True) in three-valued logic."""

    def run(f: Facts) -> Any:
        unknown = False
        for p in parts:
            v = p(f)
            if v is decisive:
                return decisive
            if v is None:
                unknown = True
        return None if unknown else not decisive

    return run


def compile_node(node: Node) -> Evaluator:
    """Turn a checked tree into a closure that evaluates it against a facts mapping."""
    op = node.op
    if op == "const":
        c = node.value
        return lambda f: c
    if op == "fact":
        name = node.value
        return lambda f: f.get(name)
    if op == "&&":
        return _kleene([compile_node(n) for n in flatten(node, "&&")], decisive=False)
    if op == "||":
        return _kleene([compile_node(n) for n in flatten(node, "||")], decisive=True)
    if op in _ARITH:
        left, right = node.args
        if (
            left.op == "fact"
            and right.op == "const"
            and right.value is not None
            and op in _COMPARISONS
        ):
            return _const_cmp(_ARITH[op], left.value, right.value)
        return _num_op(_ARITH[op])(compile_node(left), compile_node(right))
    if op in ("==", "!="):
        negate = op == "!="
        if node.args[0].op == "fact" and node.args[1].op == "const":
            return _const_eq(node.args[0].value, node.args[1].value, negate)
        left_ev, right_ev = (compile_node(a) for a in node.args)

        def eq(f: Facts) -> Any:
            a, b = left_ev(f), right_ev(f)
            if (a is None) != (b is None):
                # Comparing with an explicit null literal asks whether data is missing.
                if any(a.op == "const" and a.value is None for a in node.args):
                    return negate
                return None
            return (a == b) != negate

        return eq
    if op == "!":
        inner = compile_node(node.args[0])
        return lambda f: None if (v := inner(f)) is None else not v
    if op == "neg":
        inner = compile_node(node.args[0])
        return lambda f: None if (v := inner(f)) is None else -v
    if op == "?:":
        cond, then, other = (compile_node(a) for a in node.args)

        def ternary(f: Facts) -> Any:
            c = cond(f)
            return None if c is None else then(f) if c else other(f)

        return ternary
    if op == "list":
        items = [compile_node(a) for a in node.args]
        return lambda f: [i(f) for i in items]
    if op == "index":
        return _compile_index(node)
    if op == "in":
        item, container = (compile_node(a) for a in node.args)

        def contains(f: Facts) -> Any:
            c = container(f)
            return None if c is None else item(f) in c

        return contains
    if op == "call":
        if node.value == "has":
            selected = _compile_index(node.args[0])
            return lambda f: selected(f) is not None
        fn = FUNCTIONS[node.value][0]
        args = [compile_node(a) for a in node.args]
        return lambda f: fn(*(a(f) for a in args))
    raise ConditionError(f"unsupported operator {op!r}", node.pos)  # pragma: no cover


def _compile_index(node: Node) -> Evaluator:
    """``base[key]`` or ``base.key``; the usual ``extra.name`` reads the fact at once."""
    base_node, key_node = node.args
    if base_node.op == "fact" and key_node.op == "const":
        name, key = base_node.value, key_node.value
        return lambda f: _index(f.get(name), key)
    base, key_ev = compile_node(base_node), compile_node(key_node)
    return lambda f: _index(base(f), key_ev(f))


def _index(base: Any, key: Any) -> Any:
    if isinstance(base, Mapping):
        return base.get(key)
    if isinstance(base, list) and isinstance(key, float) and key.is_integer():
        i = int(key)
        return base[i] if 0 <= i < len(base) else None
    return None


@dataclass(frozen=True)
class Condition:
    """A compiled condition: its source, the facts it reads, and its evaluator."""

    source: str
    facts: frozenset[str]
    evaluate: Evaluator

    def holds(self, facts: Facts) -> bool:
        """True only when the condition is exactly true for these facts."""
        return self.evaluate(facts) is True


def compile_condition(source: str, fact_types: Mapping[str, Type]) -> Condition:
    """Parse, type-check and compile a condition; it must be boolean."""
    tree = parse(source)
    result = check(tree, fact_types)
    if result not in (Type.BOOL, Type.ANY):
        raise ConditionError(f"a condition must be true or false, but this one is a {result.value}")
    return Condition(source=source, facts=frozenset(fact_names(tree)), evaluate=compile_node(tree))
