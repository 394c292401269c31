"""How large a failed allocation was, read from the code that made it (worker side).

Standard library only, loaded by path like ``tracer.py``: Python does not tell how much
memory a failed request asked for, but the expression that failed often states it, and
the variables of its frame are still there.  The expression is found from the failing
instruction's source position, so a call written over several lines is read whole.
"""

from __future__ import annotations

import ast
import functools
import itertools
import operator
import os
from collections.abc import Callable
from types import CodeType, TracebackType
from typing import Any

_MB = 1024 * 1024


def short_path(path: str, root: str) -> str:
    """A frame's file as people read it: relative to the function, else its last two parts."""
    if root and path.startswith(root + os.sep):
        return path[len(root) + 1 :]
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


_SIZED_TYPES = {"bytearray": 1, "bytes": 1}
_OPERATORS: dict[type[ast.operator], Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.LShift: lambda left, right: _shifted(left, right),
}
"""The arithmetic a size may use."""
_VALUE_TYPES = (int, dict, list, tuple, bytes, bytearray, str)
"""The types a name may hold to be read: plain values whose reading runs no code."""
_SEQUENCES = (bytes, bytearray, str)
_MAX_SIZE = 1 << 48
_MAX_PARTS = 1 << 22
"""Parts of a ``join`` counted at most (more: the size is not read)."""
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


class _Source:
    """One parsed source file: its lines, its syntax tree, each node's parent, its functions."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.tree = ast.parse(text)
        self.functions: list[tuple[int, int, str]] = []
        """(first line, last line, qualified name) of every function, outermost first."""
        _collect(self.tree, "", self.functions)

    @functools.cached_property
    def parents(self) -> dict[int, ast.AST]:
        """Each node's parent, by the node's id (made when a failed allocation asks)."""
        return {
            id(child): node for node in ast.walk(self.tree) for child in ast.iter_child_nodes(node)
        }

    def statement(self, line: int) -> ast.stmt | None:
        """The innermost statement that spans ``line``."""
        spanning = [
            node
            for node in ast.walk(self.tree)
            if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or 0)
        ]
        return min(spanning, key=lambda n: (n.end_lineno or n.lineno) - n.lineno, default=None)

    def at(self, position: tuple[int, int, int, int]) -> ast.AST | None:
        """The expression or statement that spans exactly ``position`` (lines and columns)."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.expr | ast.stmt) and _span(node) == position:
                return node
        return None

    def text(self, node: ast.stmt) -> str:
        """The statement's lines (its header, for a compound one), joined into one line."""
        body = _body(node)
        last = body[0].lineno - 1 if body else node.end_lineno or node.lineno
        return " ".join(line.strip() for line in self.lines[node.lineno - 1 : last])

    def in_loop(self, node: ast.AST) -> bool:
        """True when the node runs repeatedly in its function: in a loop's body or a
        comprehension."""
        child, parent = node, self.parents.get(id(node))
        while parent is not None and not isinstance(parent, _SCOPES):
            if isinstance(parent, _COMPREHENSIONS):
                return True
            if isinstance(parent, _LOOPS) and any(child is s for s in parent.body):
                return True
            child, parent = parent, self.parents.get(id(parent))
        return False


def _body(node: ast.stmt) -> list[ast.stmt]:
    body = getattr(node, "body", None)
    return body if isinstance(body, list) and body else []


def _own_nodes(statement: ast.stmt) -> list[ast.AST]:
    """The nodes of a statement, without the statements nested in it."""
    found: list[ast.AST] = [statement]
    for child in ast.iter_child_nodes(statement):
        if not isinstance(child, ast.stmt):
            found.extend(ast.walk(child))
    return found


def _span(node: ast.AST) -> tuple[Any, ...]:
    return (
        getattr(node, "lineno", None),
        getattr(node, "end_lineno", None),
        getattr(node, "col_offset", None),
        getattr(node, "end_col_offset", None),
    )


_SOURCES: dict[str, _Source | None] = {}


def _source(path: str) -> _Source | None:
    """A file parsed once per worker (None when it cannot be read or parsed)."""
    if path not in _SOURCES:
        try:
            with open(path, encoding="utf-8") as source:
                _SOURCES[path] = _Source(source.read())
        except (OSError, SyntaxError, ValueError):
            _SOURCES[path] = None
        except MemoryError:  # out of memory still: not read now, perhaps later
            return None
    return _SOURCES[path]


def _position(code: CodeType, lasti: int) -> tuple[int, int, int, int] | None:
    """Where the instruction at ``lasti`` is in the source: lines and columns, when known."""
    if lasti < 0:
        return None
    found = next(itertools.islice(code.co_positions(), lasti // 2, None), None)
    if found is None or any(part is None for part in found):
        return None
    return found  # type: ignore[return-value]


def failed_allocation(error: BaseException, root: str) -> dict[str, Any] | None:
    """The allocation a MemoryError came from, with its size when the code states it.

    Python does not tell how much memory a failed request asked for.  The failing
    expression of the innermost frame does: for ``bytearray(n)``, ``bytes(n)``,
    ``b"x" * n``, ``[v] * n``, a concatenation of bytes or strings (``a + b``,
    ``a += b``) and ``sep.join(parts)``, the size is evaluated again from the frame's
    variables, allowing only names, constants, ``+ - * // <<``, ``len``, ``int`` and
    subscripts of plain values (nothing that could run code).  The names it reads are
    listed: what the allocation grows with.  ``repeats`` says the allocation runs in a
    loop, so the invocation may have gone on allocating after it.
    """
    tb: TracebackType | None = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return None
    frame = tb.tb_frame
    source = _source(frame.f_code.co_filename)
    statement = source.statement(tb.tb_lineno) if source is not None else None
    if source is None or statement is None:
        return None
    position = _position(frame.f_code, tb.tb_lasti)
    exact = source.at(position) if position is not None else None
    found: dict[str, Any] = {
        "file": short_path(frame.f_code.co_filename, root),
        "line": tb.tb_lineno,
        "function": frame.f_code.co_name,
        "code": source.text(statement)[:200],
    }
    if source.in_loop(exact or statement):
        found["repeats"] = True
    # The exact expression that failed, else every allocation of its statement.
    candidates = [exact] if exact is not None else _own_nodes(statement)
    for node in candidates:
        size = _size(node, frame.f_locals, frame.f_globals)
        if size is not None:
            kind, count, names = size
            return {**found, "kind": kind, "size_mb": round(count / _MB, 3), "grows_with": names}
    return found


def _size(
    node: ast.AST, local: dict[str, Any], glob: dict[str, Any]
) -> tuple[str, int, list[str]] | None:
    """(kind, bytes, names read) of an allocation whose size its code states, else None."""
    names: list[str] = []
    try:
        sized = _sized(node, local, glob, names)
    except (_Unsafe, ArithmeticError, LookupError, TypeError):
        return None
    if sized is None or not 0 <= sized[1] <= _MAX_SIZE:
        return None
    return sized[0], sized[1], names


def _sized(
    node: ast.AST, local: dict[str, Any], glob: dict[str, Any], names: list[str]
) -> tuple[str, int] | None:
    """(kind, bytes) of an allocation whose size one expression gives."""
    read = _Reader(local, glob, names)
    if _is_sized_call(node):
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        count = read.value(node.args[0])
        count = len(count) if isinstance(count, _SEQUENCES) else count
        return node.func.id, _whole(count) * _SIZED_TYPES[node.func.id]
    separator = _join_separator(node)
    if separator is not None:
        assert isinstance(node, ast.Call)
        return _joined(separator, read.value(node.args[0]))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for sequence, count in ((node.left, node.right), (node.right, node.left)):
            if isinstance(sequence, ast.Constant) and isinstance(sequence.value, bytes | str):
                times = _whole(read.value(count))
                return type(sequence.value).__name__, times * _bytes_of(sequence.value)
            if isinstance(sequence, ast.List) and len(sequence.elts) == 1:
                return "list", _whole(read.value(count)) * 8
    pair = _concatenated(node)
    if pair is not None:
        left, right = (read.value(part) for part in pair)
        if type(left) is type(right) and isinstance(left, _SEQUENCES):
            return f"{type(left).__name__} concatenation", _bytes_of(left) + _bytes_of(right)
    return None


def _concatenated(node: ast.AST) -> tuple[ast.expr, ast.expr] | None:
    """The two operands of ``a + b`` or ``a += b``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return node.left, node.right
    if (
        isinstance(node, ast.AugAssign)
        and isinstance(node.op, ast.Add)
        and isinstance(node.target, ast.Name)
    ):
        return ast.Name(node.target.id, ast.Load()), node.value
    return None


def _is_sized_call(node: ast.AST) -> bool:
    """``bytearray(n)`` or ``bytes(n)``: one argument, its size."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _SIZED_TYPES
        and len(node.args) == 1
        and not node.keywords
    )


def _join_separator(node: ast.AST) -> str | bytes | None:
    """The separator of ``"sep".join(parts)`` (one argument), else None."""
    if not isinstance(node, ast.Call) or len(node.args) != 1 or node.keywords:
        return None
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr == "join"):
        return None
    if isinstance(func.value, ast.Constant) and isinstance(func.value.value, str | bytes):
        return func.value.value
    return None


def _joined(separator: str | bytes, parts: Any) -> tuple[str, int]:
    """The size of ``separator.join(parts)`` for a list or tuple of plain strings or bytes."""
    if type(parts) not in (list, tuple) or len(parts) > _MAX_PARTS:
        raise _Unsafe("parts")
    if not all(type(part) is type(separator) for part in parts):
        raise _Unsafe("parts")
    count = len(separator) * max(0, len(parts) - 1) + sum(len(part) for part in parts)
    width = max((_width(part) for part in [separator, *parts]), default=1)
    return f"{type(separator).__name__} join", count * width


def _width(value: str | bytes | bytearray) -> int:
    """Bytes per character: 1 for bytes and ASCII text, else 1, 2 or 4 as Python stores it."""
    if not isinstance(value, str) or value.isascii() or not value:
        return 1
    highest = ord(max(value))
    return 1 if highest < 256 else 2 if highest < 65536 else 4


def _bytes_of(value: str | bytes | bytearray) -> int:
    return len(value) * _width(value)


def _whole(value: Any) -> int:
    if type(value) is not int:
        raise _Unsafe("count")
    return value


class _Unsafe(Exception):
    """The expression could run code or is not understood."""


def _shifted(value: int, bits: int) -> int:
    if not 0 <= bits < 64:
        raise _Unsafe("shift")
    return value << bits


class _Reader:
    """Evaluates a size expression from a frame's variables, running no code."""

    def __init__(self, local: dict[str, Any], glob: dict[str, Any], names: list[str]) -> None:
        self.local, self.glob, self.names = local, glob, names

    def value(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | str | bytes):
            return node.value
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = self.value(node.left), self.value(node.right)
            if not (type(left) is int and type(right) is int):
                raise _Unsafe("operands")
            return _OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.Subscript):
            container = self.value(node.value)
            key = node.slice
            if not isinstance(key, ast.Constant) or type(container) not in (dict, list, tuple):
                raise _Unsafe("subscript")
            if self.names:
                self.names[-1] = f"{self.names[-1]}[{key.value!r}]"
            return container[key.value]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("int", "len")
            and node.func.id not in self.local
            and node.func.id not in self.glob
            and len(node.args) == 1
            and not node.keywords
        ):
            value = self.value(node.args[0])
            if node.func.id == "len" and type(value) in _VALUE_TYPES and type(value) is not int:
                return len(value)
            if node.func.id == "int" and type(value) is int:
                return value
        raise _Unsafe(type(node).__name__)

    def _name(self, name: str) -> Any:
        if name in self.local:
            value = self.local[name]
        elif name in self.glob:
            value = self.glob[name]
        else:
            raise _Unsafe(name)
        if type(value) not in _VALUE_TYPES:
            raise _Unsafe(name)
        if not (name.isupper() and isinstance(value, int)):
            self.names.append(name)  # constants are not what it grows with
        return value


def function_at(path: str, line: int) -> str:
    """The name of the innermost function defined around ``line`` of a file ('' if none).

    tracemalloc's frames give only file and line; this names them as flame graphs do
    (``scale.block_mean`` for a nested function), parsing each file once.
    """
    source = _source(path)
    best = ""
    for first, last, name in source.functions if source is not None else ():
        if first <= line <= last and len(name) >= len(best):
            best = name
    return best


def _collect(node: ast.AST, prefix: str, spans: list[tuple[int, int, str]]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                spans.append((child.lineno, child.end_lineno or child.lineno, name))
            _collect(child, name + ".", spans)
        else:
            _collect(child, prefix, spans)
