"""How large a failed allocation was, read from the line that made it (worker side).

Standard library only, loaded by path like ``tracer.py``: Python does not tell how much
memory a failed request asked for, but the innermost frame of the MemoryError often
states it, and its variables are still there.
"""

from __future__ import annotations

import ast
import os
from types import TracebackType
from typing import Any

_MB = 1024 * 1024


def short_path(path: str, root: str) -> str:
    """A frame's file as people read it: relative to the function, else its last two parts."""
    if root and path.startswith(root + os.sep):
        return path[len(root) + 1 :]
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


_SIZED_TYPES = {"bytearray": 1, "bytes": 1}
_SAFE_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv)
_MAX_SIZE = 1 << 48


def failed_allocation(error: BaseException, root: str) -> dict[str, Any] | None:
    """The allocation a MemoryError came from, with its size when the code states it.

    Python does not tell how much memory a failed request asked for.  The innermost frame
    of the traceback does: when its line is ``bytearray(n)``, ``bytes(n)``, ``b"x" * n`` or
    ``[v] * n``, ``n`` is evaluated again from the frame's variables, allowing only names,
    constants, ``+ - * //`` and subscripts of plain dicts and lists (nothing that could run
    code).  The names it reads are listed: what the allocation grows with.
    """
    tb: TracebackType | None = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return None
    frame = tb.tb_frame
    site = {
        "file": short_path(frame.f_code.co_filename, root),
        "line": tb.tb_lineno,
        "function": frame.f_code.co_name,
    }
    source = _source_line(frame.f_code.co_filename, tb.tb_lineno)
    if source is None:
        return None
    try:
        tree = ast.parse(source.strip(), mode="exec")
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        sized = _sized(node)
        if sized is None:
            continue
        kind, expression, unit = sized
        names: list[str] = []
        try:
            count = _evaluate(expression, frame.f_locals, frame.f_globals, names)
        except (_Unsafe, ArithmeticError, LookupError, TypeError):
            continue
        if not isinstance(count, int) or not 0 <= count * unit <= _MAX_SIZE:
            continue
        return {
            **site,
            "kind": kind,
            "code": source.strip()[:200],
            "size_mb": round(count * unit / _MB, 3),
            "grows_with": names,
        }
    return {**site, "code": source.strip()[:200]}


def _source_line(path: str, line: int) -> str | None:
    try:
        with open(path, encoding="utf-8") as source:
            for number, text in enumerate(source, start=1):
                if number == line:
                    return text
    except OSError:
        return None
    return None


def _sized(node: ast.AST) -> tuple[str, ast.expr, int] | None:
    """An allocation whose size one expression gives: (kind, size expression, bytes per unit)."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _SIZED_TYPES
        and len(node.args) == 1
        and not node.keywords
    ):
        return node.func.id, node.args[0], _SIZED_TYPES[node.func.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for sequence, count in ((node.left, node.right), (node.right, node.left)):
            if isinstance(sequence, ast.Constant) and isinstance(sequence.value, bytes):
                return "bytes", count, max(1, len(sequence.value))
            if isinstance(sequence, ast.List) and len(sequence.elts) == 1:
                return "list", count, 8
    return None


class _Unsafe(Exception):
    """The expression could run code or is not understood."""


def _evaluate(node: ast.expr, local: dict[str, Any], glob: dict[str, Any], names: list[str]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in local:
            value = local[node.id]
        elif node.id in glob:
            value = glob[node.id]
        else:
            raise _Unsafe(node.id)
        if type(value) not in (int, dict, list, tuple):
            raise _Unsafe(node.id)
        if not (node.id.isupper() and isinstance(value, int)):
            names.append(node.id)  # constants are not what it grows with
        return value
    if isinstance(node, ast.BinOp) and isinstance(node.op, _SAFE_OPERATORS):
        left = _evaluate(node.left, local, glob, names)
        right = _evaluate(node.right, local, glob, names)
        if not (type(left) is int and type(right) is int):
            raise _Unsafe("operands")
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        return left // right
    if isinstance(node, ast.Subscript):
        container = _evaluate(node.value, local, glob, names)
        key = node.slice
        if not isinstance(key, ast.Constant) or type(container) not in (dict, list, tuple):
            raise _Unsafe("subscript")
        if names:
            names[-1] = f"{names[-1]}[{key.value!r}]"
        return container[key.value]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("int", "len")
        and len(node.args) == 1
        and glob.get("__builtins__") is not None
    ):
        value = _evaluate(node.args[0], local, glob, names)
        if node.func.id == "len" and type(value) in (dict, list, tuple):
            return len(value)
        if node.func.id == "int" and type(value) is int:
            return value
        raise _Unsafe("call")
    raise _Unsafe(type(node).__name__)


_FUNCTIONS: dict[str, list[tuple[int, int, str]]] = {}


def function_at(path: str, line: int) -> str:
    """The name of the innermost function defined around ``line`` of a file ('' if none).

    tracemalloc's frames give only file and line; this names them as flame graphs do
    (``scale.block_mean`` for a nested function), parsing each file once.
    """
    if path not in _FUNCTIONS:
        spans: list[tuple[int, int, str]] = []
        try:
            with open(path, encoding="utf-8") as source:
                tree = ast.parse(source.read())
        except (OSError, SyntaxError, ValueError):
            tree = None
        if tree is not None:
            _collect(tree, "", spans)
        _FUNCTIONS[path] = spans
    best = ""
    for first, last, name in _FUNCTIONS[path]:
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
