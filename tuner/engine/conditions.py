"""Rule conditions: a safe subset of CEL compiled once into a Python function each.

A condition such as ``ooms > 0.0 && peak_memory_mb >= 0.9 * memory_mb`` is parsed by a
small Pratt parser into a tree, type-checked against the fact reference, and written out
as one Python expression (a function call per condition, not one per operator: rules are
evaluated for every function in every cycle).  tuner writes that text from fixed operator
tokens and names of its own; the rule file's constants and fact names are passed in as
values, never as text.  The only names a condition can reach are the documented facts and
the functions listed in :data:`FUNCTIONS`, so no Python object, attribute or module is
reachable.

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
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_INLINE = {
    "+": "{a} + {b}",
    "-": "{a} - {b}",
    "*": "{a} * {b}",
    "/": "({a} / {b} if {b} else None)",
    "%": "({a} % {b} if {b} else None)",
    "<": "{a} < {b}",
    "<=": "{a} <= {b}",
    ">": "{a} > {b}",
    ">=": "{a} >= {b}",
}
"""Each operator written out, for operands that are numbers (or strings, to compare)."""
_COMPARISONS = frozenset({"<", "<=", ">", ">="})


def _guarded(fn: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    """An operator on values of no known type: a type that does not fit is unknown (null)."""
    try:
        return fn(a, b)
    except (ZeroDivisionError, TypeError):
        return None


def _index(base: Any, key: Any) -> Any:
    if isinstance(base, Mapping):
        return base.get(key)
    if isinstance(base, list) and isinstance(key, float) and key.is_integer():
        i = int(key)
        return base[i] if 0 <= i < len(base) else None
    return None


class _Writer:
    """Writes a checked condition tree as one Python expression over the facts ``f``.

    The text it writes holds only fixed operator tokens and names it makes up: every
    constant, fact name and function is passed in as a value (``_k0``, ``_k1``, ...), so
    nothing from a rule file is ever read as Python.  Intermediate values are kept in
    ``_t1``, ``_t2``, ... (assignment expressions), so that each operand is computed once
    and only when the three-valued logic needs it, in the same order as written.
    """

    def __init__(self, fact_types: Mapping[str, Type] | None):
        self.fact_types = fact_types
        self.values: dict[str, Any] = {"_index": _index, "_guarded": _guarded}
        self.temps = 0

    def value(self, v: Any) -> str:
        name = f"_k{len(self.values)}"
        self.values[name] = v
        return name

    def temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def known(self, node: Node) -> Type:
        """The node's static type; ANY where the facts' types are not given."""
        return Type.ANY if self.fact_types is None else check(node, self.fact_types)

    def write(self, node: Node) -> str:
        op = node.op
        if op == "const":
            return self.value(node.value)
        if op == "fact":
            return f"f.get({self.value(node.value)})"
        if op in ("&&", "||"):
            return self.kleene([self.write(n) for n in flatten(node, op)], op == "||")
        if op in _ARITH:
            return self.arithmetic(op, *node.args)
        if op in ("==", "!="):
            return self.equality(op == "!=", *node.args)
        if op in ("!", "neg"):
            t, inner = self.temp(), self.write(node.args[0])
            return f"(None if ({t} := {inner}) is None else {'not ' if op == '!' else '-'}{t})"
        if op == "?:":
            t, (cond, then, other) = self.temp(), (self.write(a) for a in node.args)
            return f"(None if ({t} := {cond}) is None else ({then} if {t} else {other}))"
        if op == "list":
            return f"[{', '.join(self.write(a) for a in node.args)}]"
        if op == "index":
            base, key = (self.write(a) for a in node.args)
            return f"_index({base}, {key})"
        if op == "in":
            t, item, container = self.temp(), *(self.write(a) for a in node.args)
            return f"(None if ({t} := {container}) is None else {item} in {t})"
        if op == "call":
            if node.value == "has":
                return f"({self.write(node.args[0])} is not None)"
            fn = self.value(FUNCTIONS[node.value][0])
            return f"{fn}({', '.join(self.write(a) for a in node.args)})"
        raise ConditionError(f"unsupported operator {op!r}", node.pos)  # pragma: no cover

    def kleene(self, parts: list[str], decisive: bool) -> str:
        """``&&`` (decisive false) or ``||`` (decisive true): the first decisive part decides."""
        temps = [self.temp() for _ in parts]
        unknown = " or ".join(f"{t} is None" for t in temps)
        text = f"(None if {unknown} else {not decisive})"
        for t, part in zip(reversed(temps), reversed(parts), strict=True):
            text = f"({decisive} if ({t} := {part}) is {decisive} else {text})"
        return text

    def arithmetic(self, op: str, left: Node, right: Node) -> str:
        """An operator on two values: null when either is null (the right one then not computed)."""
        (a, a_null), (b, b_null) = self.operand(left), self.operand(right)
        types = {self.known(left), self.known(right)}
        if types == {Type.NUMBER} or (op in _COMPARISONS and types == {Type.STRING}):
            result = _INLINE[op].format(a=a, b=b)
        else:
            result = f"_guarded({self.value(_ARITH[op])}, {a}, {b})"
        unknown = " or ".join(test for test in (a_null, b_null) if test)
        return f"(None if {unknown} else {result})" if unknown else result

    def operand(self, node: Node) -> tuple[str, str]:
        """A name for the operand's value, and the test that it is null ("" for a constant)."""
        if node.op == "const" and node.value is not None:
            return self.value(node.value), ""
        t = self.temp()
        return t, f"({t} := {self.write(node)}) is None"

    def equality(self, negate: bool, left: Node, right: Node) -> str:
        """``==`` / ``!=``: against a null literal it asks whether data is missing."""
        equal = "!=" if negate else "=="
        if right.op == "const" and right.value is None:
            return f"({self.write(left)} is {'not ' if negate else ''}None)"
        if left.op == "const" and left.value is None:
            return f"({self.write(right)} is {'not ' if negate else ''}None)"
        (a, a_null), (b, b_null) = self.operand(left), self.operand(right)
        if a_null and b_null:
            return f"(None if ({a_null}) != ({b_null}) else {a} {equal} {b})"
        if a_null or b_null:  # the other side is a constant, not null
            return f"(None if {a_null or b_null} else {a} {equal} {b})"
        return f"({a} {equal} {b})"


def compile_node(node: Node, fact_types: Mapping[str, Type] | None = None) -> Evaluator:
    """Turn a checked tree into one Python function that evaluates it against a facts mapping.

    With the facts' types, arithmetic and comparisons on numbers are written out; without
    them (or on values of no known type) a type that does not fit gives null.
    """
    writer = _Writer(fact_types)
    text = writer.write(node)
    namespace = dict(writer.values)
    # The text is tuner's own (see _Writer): rule files reach it only as values.
    exec(compile(f"def condition(f):\n    return {text}\n", "<condition>", "exec"), namespace)
    evaluator: Evaluator = namespace["condition"]
    return evaluator


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
    return Condition(
        source=source, facts=frozenset(fact_names(tree)), evaluate=compile_node(tree, fact_types)
    )
