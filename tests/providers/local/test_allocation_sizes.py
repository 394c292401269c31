"""The size of a failed allocation, read back from the line that made it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tuner.providers.local.allocation_sizes import failed_allocation, function_at

SOURCE = """\
GIB = 1 << 30
SIZES = {"pages": 4096}


def canvas(pages):
    return bytearray(pages * GIB)


def rows(event):
    return [0] * (event["rows"] * GIB)


def text(n):
    return b"ab" * (len(n) * 1024 * GIB)


def opaque(box):
    return bytearray(box.size())


class Page:
    def render(self):
        def ink():
            return 1
        return ink()
"""


@pytest.fixture
def allocator(tmp_path: Path) -> ModuleType:
    path = tmp_path / "handler.py"
    path.write_text(SOURCE)
    spec = importlib.util.spec_from_file_location("sizes_handler", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _failure(call: Any, *args: Any) -> MemoryError:
    with pytest.raises(MemoryError) as caught:
        call(*args)
    return caught.value


def test_size_and_what_it_grows_with(allocator: ModuleType, tmp_path: Path) -> None:
    found = failed_allocation(_failure(allocator.canvas, 4096), str(tmp_path))
    assert found == {
        "file": "handler.py",
        "line": 6,
        "function": "canvas",
        "kind": "bytearray",
        "code": "return bytearray(pages * GIB)",
        "size_mb": 4096 * 1024.0,
        "grows_with": ["pages"],
    }


def test_lists_and_repeated_bytes(allocator: ModuleType, tmp_path: Path) -> None:
    rows = failed_allocation(_failure(allocator.rows, {"rows": 512}), str(tmp_path))
    assert rows is not None and rows["kind"] == "list"
    assert rows["size_mb"] == 512 * 1024 * 8.0 and rows["grows_with"] == ["event['rows']"]
    text = failed_allocation(_failure(allocator.text, [1, 2]), str(tmp_path))
    assert text is not None and text["kind"] == "bytes"
    assert text["size_mb"] == 2 * 1024 * 1024 * 2.0 and text["grows_with"] == ["n"]


class _Box:
    calls = 0

    def size(self) -> int:
        _Box.calls += 1
        return 1 << 42


def test_code_that_could_run_something_is_not_evaluated(
    allocator: ModuleType, tmp_path: Path
) -> None:
    box = _Box()
    found = failed_allocation(_failure(allocator.opaque, box), str(tmp_path))
    calls = _Box.calls
    assert found == {
        "file": "handler.py",
        "line": 18,
        "function": "opaque",
        "code": "return bytearray(box.size())",
    }
    assert calls == 1  # only the handler's own call: the size was not asked again


def test_allocation_frames_are_named_by_their_function(tmp_path: Path) -> None:
    path = tmp_path / "named.py"
    path.write_text(SOURCE)
    assert function_at(str(path), 6) == "canvas"
    assert function_at(str(path), 24) == "Page.render.ink"
    assert function_at(str(path), 25) == "Page.render"
    assert function_at(str(path), 1) == ""  # module level
    assert function_at(str(tmp_path / "missing.py"), 3) == ""
