"""The grammar of rule conditions: a tokenizer and a small Pratt parser for a subset of CEL.

:func:`parse` turns a condition's text into a tree of :class:`Node`, enforcing the size
and depth budget; :mod:`tuner.engine.conditions` type-checks and compiles the tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_SOURCE_CHARS = 2_000
MAX_NODES = 200
MAX_DEPTH = 24


class ConditionError(ValueError):
    """A condition does not parse, names an unknown fact, mistypes, or exceeds the budget."""

    def __init__(self, message: str, column: int | None = None):
        self.column = column
        where = f" (at column {column + 1})" if column is not None else ""
        super().__init__(message + where)


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:.,()\[\]])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(source: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise ConditionError(f"unexpected character {source[pos]!r}", pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    tokens.append(_Tok("end", "", len(source)))
    return tokens


@dataclass(frozen=True, slots=True)
class Node:
    """A node of a parsed condition: an operator or leaf with its children."""

    op: str
    args: tuple[Node, ...] = ()
    value: Any = None
    pos: int = 0


BINARY_POWER: dict[str, int] = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "<": 3,
    "<=": 3,
    ">": 3,
    ">=": 3,
    "in": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
}


class _Parser:
    def __init__(self, source: str):
        self.tokens = _tokenize(source)
        self.i = 0
        self.nodes = 0

    def peek(self) -> _Tok:
        return self.tokens[self.i]

    def take(self, text: str | None = None) -> _Tok:
        tok = self.tokens[self.i]
        if text is not None and tok.text != text:
            found = tok.text or "end of condition"
            raise ConditionError(f"expected {text!r} but found {found!r}", tok.pos)
        self.i += 1
        return tok

    def node(self, op: str, args: tuple[Node, ...] = (), value: Any = None, pos: int = 0) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ConditionError(f"condition is too large (more than {MAX_NODES} nodes)", pos)
        return Node(op, args, value, pos)

    def parse(self) -> Node:
        tree = self.expr(0)
        tok = self.peek()
        if tok.kind != "end":
            raise ConditionError(f"unexpected {tok.text!r}", tok.pos)
        return tree

    def expr(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise ConditionError(
                f"condition is nested too deeply (over {MAX_DEPTH})", self.peek().pos
            )
        cond = self.binary(0, depth)
        if self.peek().text == "?":
            pos = self.take().pos
            then = self.expr(depth + 1)
            self.take(":")
            other = self.expr(depth + 1)
            return self.node("?:", (cond, then, other), pos=pos)
        return cond

    def binary(self, min_power: int, depth: int) -> Node:
        left = self.unary(depth + 1)
        while True:
            tok = self.peek()
            power = BINARY_POWER.get(tok.text) if tok.kind in ("op", "ident") else None
            if power is None or power <= min_power:
                return left
            self.take()
            right = self.binary(power, depth + 1)
            left = self.node(tok.text, (left, right), pos=tok.pos)

    def unary(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise ConditionError(
                f"condition is nested too deeply (over {MAX_DEPTH})", self.peek().pos
            )
        tok = self.peek()
        if tok.text in ("!", "-"):
            self.take()
            operand = self.unary(depth + 1)
            if tok.text == "-" and operand.op == "const" and isinstance(operand.value, float):
                return self.node("const", value=-operand.value, pos=tok.pos)
            return self.node("neg" if tok.text == "-" else "!", (operand,), pos=tok.pos)
        return self.member(depth)

    def member(self, depth: int) -> Node:
        node = self.primary(depth)
        while True:
            tok = self.peek()
            if tok.text == ".":
                self.take()
                name = self.take()
                if name.kind != "ident":
                    raise ConditionError("expected a field name after '.'", name.pos)
                _check_ident(name)
                node = self.node("index", (node, self.node("const", value=name.text)), pos=name.pos)
            elif tok.text == "[":
                self.take()
                key = self.expr(depth + 1)
                self.take("]")
                node = self.node("index", (node, key), pos=tok.pos)
            else:
                return node

    def items(self, close: str, depth: int) -> tuple[Node, ...]:
        """Comma-separated expressions up to ``close`` (a call's arguments, a list's items)."""
        items: list[Node] = []
        while self.peek().text != close:
            items.append(self.expr(depth + 1))
            if self.peek().text != close:
                self.take(",")
        self.take(close)
        return tuple(items)

    def primary(self, depth: int) -> Node:
        tok = self.take()
        if tok.kind == "number":
            return self.node("const", value=float(tok.text), pos=tok.pos)
        if tok.kind == "string":
            return self.node("const", value=_unquote(tok), pos=tok.pos)
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                return self.node("const", value=tok.text == "true", pos=tok.pos)
            if tok.text == "null":
                return self.node("const", value=None, pos=tok.pos)
            _check_ident(tok)
            if self.peek().text == "(":
                self.take()
                args = self.items(")", depth)
                return self.node("call", args, value=tok.text, pos=tok.pos)
            return self.node("fact", value=tok.text, pos=tok.pos)
        if tok.text == "(":
            inner = self.expr(depth + 1)
            self.take(")")
            return inner
        if tok.text == "[":
            return self.node("list", self.items("]", depth), pos=tok.pos)
        raise ConditionError(f"unexpected {tok.text or 'end of condition'!r}", tok.pos)


def _check_ident(tok: _Tok) -> None:
    if tok.text.startswith("_"):
        raise ConditionError(f"names starting with '_' are not allowed: {tok.text!r}", tok.pos)


def _unquote(tok: _Tok) -> str:
    body = tok.text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse(source: str) -> Node:
    """Parse a condition into a tree, enforcing the size and depth budget."""
    if len(source) > MAX_SOURCE_CHARS:
        raise ConditionError(f"condition is too long (more than {MAX_SOURCE_CHARS} characters)")
    return _Parser(source).parse()


def flatten(node: Node, op: str) -> list[Node]:
    """The operands of a chain of one operator: ``a && b && c`` -> ``[a, b, c]``."""
    if node.op != op:
        return [node]
    return [leaf for arg in node.args for leaf in flatten(arg, op)]


def fact_names(node: Node) -> set[str]:
    """Every fact a condition tree reads; a field read by its name as ``fact.field``.

    ``has(extra.probe_pending)`` reads ``extra.probe_pending``, not all of ``extra``.
    """
    if node.op == "index":
        base, key = node.args
        if base.op == "fact" and key.op == "const" and isinstance(key.value, str):
            return {f"{base.value}.{key.value}"}
    names = {node.value} if node.op == "fact" else set()
    for arg in node.args:
        names |= fact_names(arg)
    return names
