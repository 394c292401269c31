"""Every fact read anywhere is one the fact reference documents and a provider produces.

A misspelt fact name reads None and silently never fires; this test reads the source of
tuner (and its message templates) for fact names and checks each against the reference.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from tuner.engine.reference import EXTRA_FACTS, FACTS

PACKAGE = Path(__file__).resolve().parents[2] / "tuner"
FACT_HOLDERS = {"facts", "before", "after", "window", "extra"}
"""Names of variables (or attributes) that hold facts in tuner's code."""
LIST_MODULES = {"notify/facts.py"}
"""Modules whose module-level string collections are lists of fact names."""


def _holder(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _reads(tree: ast.AST) -> Iterator[tuple[str, str, int]]:
    """(holder, fact name, line) for every literal fact name read in a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = node.args[-1] if len(node.args) == 2 else node.args[0]
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                continue
            if len(node.args) == 2 and (
                (isinstance(func, ast.Name) and func.id == "fact_number")
                or _holder(node.args[0]) in FACT_HOLDERS  # any reader of facts by name
            ):
                reader = func.id if isinstance(func, ast.Name) else ""
                holder = _holder(node.args[0]) or "facts"
                if "extra" in reader:
                    holder = "extra"  # a reader of the provider's extra facts
                elif reader == "_fact":
                    holder = "facts or extra"
                yield holder, name.value, node.lineno
            elif isinstance(func, ast.Attribute) and func.attr == "get":
                holder = _holder(func.value)
                if holder in FACT_HOLDERS:
                    yield holder, name.value, node.lineno
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            holder = _holder(node.value)
            if holder in FACT_HOLDERS and isinstance(node.slice.value, str):
                yield holder, node.slice.value, node.lineno


def _known(holder: str, name: str) -> bool:
    if holder == "extra":
        return name in EXTRA_FACTS
    if holder == "facts or extra":
        return name in FACTS or name in EXTRA_FACTS
    return name in FACTS


def test_every_fact_read_in_the_code_is_in_the_reference() -> None:
    unknown = []
    read = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("providers/") or rel == "engine/facts.py":
            continue  # providers and the fact builder produce facts; they do not read them
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for holder, name, line in _reads(tree):
            read += 1
            if not _known(holder, name):
                unknown.append(f"tuner/{rel}:{line}: {holder}[{name!r}]")
        if rel in LIST_MODULES:
            for node in tree.body:
                if isinstance(node, ast.Assign):
                    for const in ast.walk(node.value):
                        if isinstance(const, ast.Constant) and isinstance(const.value, str):
                            read += 1
                            if const.value not in FACTS:
                                unknown.append(f"tuner/{rel}:{const.lineno}: {const.value!r}")
    assert read > 40, "the scan found the fact reads"
    assert unknown == []


def test_every_fact_a_template_reads_is_in_the_reference() -> None:
    pattern = re.compile(r"facts(?:\.get\(['\"]|\[['\"]|\.)(\w+)")
    for template in (PACKAGE / "notify" / "templates").iterdir():
        for name in pattern.findall(template.read_text(encoding="utf-8")):
            assert name in FACTS or name in ("get", "items"), f"{template.name}: {name}"


def test_every_extra_fact_a_provider_writes_is_in_the_reference() -> None:
    written = set()
    for path in (PACKAGE / "providers").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Subscript)
                and _holder(node.value) == "extra"
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.slice, ast.Constant)
            ):
                written.add(node.slice.value)
            if (
                isinstance(node, ast.keyword)
                and node.arg == "extra"
                and isinstance(node.value, ast.Dict)
            ):
                written.update(k.value for k in node.value.keys if isinstance(k, ast.Constant))
    assert written, "the scan found the providers' extra facts"
    assert written <= set(EXTRA_FACTS), written - set(EXTRA_FACTS)


def test_a_misspelt_fact_is_caught() -> None:
    tree = ast.parse(
        "fact_number(facts, 'oomz')\nextra.get('cache_hit_rat')\nfacts['ooms']\n"
        "_number(alert.facts, 'memory_payload_correlation')"
    )
    reads = sorted((h, n, _known(h, n)) for h, n, _ in _reads(tree))
    assert reads == [
        ("extra", "cache_hit_rat", False),
        ("facts", "memory_payload_correlation", False),
        ("facts", "ooms", True),
        ("facts", "oomz", False),
    ]
