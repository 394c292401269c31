"""Explaining a condition: each clause with its current value and whether it holds.

``explain("ooms > 0.0 && peak_memory_mb >= 0.9 * memory_mb", facts)`` splits the
condition at its top-level ``&&`` (or ``||``) and evaluates every clause on its own, with
the same three-valued logic the rule uses, so a person sees which clause kept a rule from
firing and which clause had no data.  Pure: it parses with the condition compiler and
never touches anything but the facts it is given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tuner.engine.conditions import compile_node
from tuner.engine.expressions import BINARY_POWER, Node, fact_names, flatten, parse

_COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})
_PRECEDENCE = {"?:": 0, **BINARY_POWER}


class _Judged:
    """What a clause or a whole condition evaluated to, in words."""

    value: Any

    @property
    def status(self) -> str:
        """``holds``, ``does not hold`` or ``no data``."""
        return status(self.value)


@dataclass(frozen=True)
class Clause(_Judged):
    """One clause of a condition, evaluated on its own."""

    text: str
    value: Any
    """What the clause evaluates to: True, False, or None (no data)."""
    facts: Mapping[str, Any] = field(default_factory=dict)
    """The facts the clause reads, with their current values."""
    operands: tuple[Any, ...] = ()
    """For a comparison: the values of its left and right side."""
    parts: tuple[Clause, ...] = ()
    """For a parenthesised ``&&``/``||`` group: its own clauses."""
    joiner: str = ""
    """``&&`` or ``||`` when the clause has parts."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (NaN and infinities become null)."""
        return {
            "text": self.text,
            "value": plain(self.value),
            "status": self.status,
            "facts": {k: plain(v) for k, v in self.facts.items()},
            "operands": [plain(v) for v in self.operands],
            "joiner": self.joiner,
            "parts": [p.to_json() for p in self.parts],
        }


@dataclass(frozen=True)
class Explanation(_Judged):
    """A whole condition explained: its value and its top-level clauses."""

    source: str
    value: Any
    joiner: str
    clauses: tuple[Clause, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "source": self.source,
            "value": plain(self.value),
            "status": self.status,
            "joiner": self.joiner,
            "clauses": [c.to_json() for c in self.clauses],
        }


def status(value: Any) -> str:
    """The words for a clause's value: a rule fires only on exactly true."""
    if value is True:
        return "holds"
    if value is None:
        return "no data"
    return "does not hold"


def explain(source: str, facts: Mapping[str, Any]) -> Explanation:
    """Explain a condition (already validated when its rule loaded) against facts."""
    tree = parse(source)
    joiner = tree.op if tree.op in ("&&", "||") else ""
    nodes = flatten(tree, joiner) if joiner else [tree]
    clauses = tuple(_clause(n, facts) for n in nodes)
    return Explanation(source, compile_node(tree)(facts), joiner, clauses)


def _clause(node: Node, facts: Mapping[str, Any]) -> Clause:
    value = compile_node(node)(facts)
    operands: tuple[Any, ...] = ()
    if node.op in _COMPARISONS:
        operands = tuple(compile_node(a)(facts) for a in node.args)
    parts: tuple[Clause, ...] = ()
    joiner = node.op if node.op in ("&&", "||") else ""
    if joiner:
        parts = tuple(_clause(n, facts) for n in flatten(node, joiner))
    names = sorted(fact_names(node))
    return Clause(
        text=render(node),
        value=value,
        facts={n: fact_value(facts, n) for n in names},
        operands=operands,
        parts=parts,
        joiner=joiner,
    )


def fact_value(facts: Mapping[str, Any], name: str) -> Any:
    """A fact by the name :func:`~tuner.engine.expressions.fact_names` gives it (``extra.x``)."""
    if name in facts:
        return facts[name]
    head, _, field = name.partition(".")
    base = facts.get(head)
    return base.get(field) if field and isinstance(base, Mapping) else None


def render(node: Node, parent: int = -1) -> str:
    """The source text of a parsed condition, with only the parentheses it needs."""
    op = node.op
    if op == "const":
        return _literal(node.value)
    if op == "fact":
        return str(node.value)
    if op == "list":
        return "[" + ", ".join(render(a) for a in node.args) + "]"
    if op == "index":
        base, key = node.args
        if key.op == "const" and isinstance(key.value, str) and key.value.isidentifier():
            return f"{render(base, 9)}.{key.value}"
        return f"{render(base, 9)}[{render(key)}]"
    if op == "call":
        return f"{node.value}(" + ", ".join(render(a) for a in node.args) + ")"
    if op == "!":
        return "!" + render(node.args[0], 8)
    if op == "neg":
        return "-" + render(node.args[0], 8)
    power = _PRECEDENCE[op]
    if op == "?:":
        cond, then, other = node.args
        text = f"{render(cond, 1)} ? {render(then)} : {render(other)}"
    else:
        left, right = node.args
        text = f"{render(left, power - 1 if op in ('&&', '||') else power)} {op} {render(right, power)}"
    return f"({text})" if power <= parent else text


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def plain(value: Any) -> Any:
    """A JSON-safe copy: NaN and infinities become null, tuples and sets become lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def shown(value: Any) -> str:
    """A fact's value as people read it, the way conditions write it: never a Python repr.

    ``null``, ``true``/``false``, numbers without a trailing ``.0``, and nested facts as
    ``{name: value, ...}``.
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    return str(value)
