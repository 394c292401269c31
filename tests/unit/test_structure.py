"""The house keeps its shape: layers over packages, no cycle, small modules, formatted code.

These run in CI with the rest of the tests, so a change that breaks the structure fails
like one that breaks behaviour.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tuner", "operators", "tuner_handler")
MAX_LINES = 400
PRAGMA = "# fmt" + ": skip"  # spelled apart, so this file does not hold the pragma itself


def _modules() -> Iterator[tuple[str, Path]]:
    """Every module of tuner/ and operators/, by dotted name."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def _layers() -> list[list[str]]:
    """The layers contract from pyproject.toml: each layer's packages, top first."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    [layered] = [c for c in contracts if c["type"] == "layers"]
    return [[p.strip() for p in layer.replace(":", "|").split("|")] for layer in layered["layers"]]


def test_the_import_contracts_hold() -> None:
    """The pure core imports no SDK, and every import points down the layers (import-linter)."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


def test_the_layers_name_packages_not_modules() -> None:
    """A layer is a package: a new file lands in its package's layer without being listed."""
    for layer in _layers():
        for name in layer:
            path = ROOT / name.replace(".", "/")
            assert (path / "__init__.py").is_file(), f"layer {name!r} is not a package"


def test_every_module_is_in_a_layer() -> None:
    covered = [name for layer in _layers() for name in layer]
    outside = [
        module
        for module, _ in _modules()
        if module not in PACKAGES
        and not any(module == name or module.startswith(name + ".") for name in covered)
    ]
    assert not outside, f"modules in no layer of pyproject.toml: {outside}"


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_no_import_cycle_not_even_through_type_checking_imports() -> None:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False, cache_dir=None)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    cycles = _strongly_connected(edges)
    assert not cycles, f"import cycles: {cycles}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    cycles = _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert cycles == [["a", "b", "c"]]
    assert _strongly_connected({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("module,path", list(_modules()), ids=lambda v: str(v))
def test_no_module_is_over_400_lines(module: str, path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines: split it by what its parts do"


def test_every_module_says_what_it_holds() -> None:
    """A docstring on every module, its first sentence on the first line."""
    missing = [
        module
        for module, path in _modules()
        if not (ast.get_docstring(ast.parse(path.read_text())) or "").strip()
    ]
    assert not missing, f"modules without a docstring: {missing}"


def test_the_code_is_formatted() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    dirs = ["tuner", "operators", "tuner_handler", "tests", "bench", "scripts"]
    result = subprocess.run(
        [str(ruff), "format", "--check", *dirs], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _says_why(line: str) -> bool:
    """True when a line kept from the formatter has a comment of its own beside the pragma."""
    before, _, after = line.partition(PRAGMA)
    return after.strip().startswith("# ") or "  # " in before


def test_each_fmt_skip_says_why() -> None:
    """A line kept out of the formatter says why, in a comment beside the pragma."""
    bare = [
        f"{path.relative_to(ROOT)}:{number}"
        for directory in ("tuner", "operators", "tuner_handler", "tests", "bench", "scripts")
        for path in (ROOT / directory).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PRAGMA in line and not _says_why(line)
    ]
    assert not bare, f"{PRAGMA!r} without a reason beside it: {bare}"


def test_a_bare_fmt_skip_is_caught() -> None:
    assert not _says_why(f"x = [1,2]  {PRAGMA}")
    assert _says_why(f"x = [1,2]  # a table {PRAGMA}")
    assert _says_why(f"x = [1,2]  {PRAGMA} # a table")
