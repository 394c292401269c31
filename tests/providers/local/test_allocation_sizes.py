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


SHAPES_SOURCE = """\
MB = 1024 * 1024


def nested(event):
    def fill(size_mb):
        block = bytearray(
            size_mb << 20
        )
        return block
    return fill(event["mb"])


def joined(count):
    parts = [str(index % 10) * 1024 for index in range(count)]
    return "".join(parts)


def concatenated(chunks):
    piece = bytes(8 * MB)
    blob = b""
    for _ in range(chunks):
        blob += piece
    return blob


def appended(count):
    items = []
    for index in range(count):
        items.append(bytes(1000))
    return items
"""
RUNNER = """\
import importlib.util, json, resource, sys
spec = importlib.util.spec_from_file_location("sizes", sys.argv[1])
sizes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sizes)
spec = importlib.util.spec_from_file_location("shapes", sys.argv[2])
shapes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shapes)
limit = 200 * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
reserve = bytearray(4 * 1024 * 1024)  # as a worker keeps, to read what failed
try:
    getattr(shapes, sys.argv[3])(json.loads(sys.argv[4]))
except MemoryError as error:
    del reserve
    print(json.dumps(sizes.failed_allocation(error, sys.argv[5])))
"""


def failed_under_a_limit(tmp_path: Path, function: str, argument: Any) -> dict[str, Any]:
    """What ``failed_allocation`` reads from a real MemoryError under a 200 MB address space."""
    import json
    import subprocess
    import sys

    import tuner.providers.local.allocation_sizes as sizes

    (tmp_path / "shapes.py").write_text(SHAPES_SOURCE)
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            RUNNER,
            sizes.__file__,
            str(tmp_path / "shapes.py"),
            function,
            json.dumps(argument),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    found: dict[str, Any] = json.loads(run.stdout)
    return found


def test_a_call_written_over_several_lines_is_read_whole(tmp_path: Path) -> None:
    found = failed_under_a_limit(tmp_path, "nested", {"mb": 300})
    assert found["function"] == "fill" and found["line"] == 6
    assert found["kind"] == "bytearray" and found["size_mb"] == 300.0
    assert found["code"] == "block = bytearray( size_mb << 20 )"
    assert found["grows_with"] == ["size_mb"] and "repeats" not in found


def test_a_join_states_the_size_of_what_it_makes(tmp_path: Path) -> None:
    # 100,000 parts of 1,024 characters fit; joining them needs 98 MB more, which does not.
    found = failed_under_a_limit(tmp_path, "joined", 100_000)
    assert found["kind"] == "str join" and found["code"] == 'return "".join(parts)'
    assert found["size_mb"] == round(100_000 * 1024 / 1024 / 1024, 3)
    assert "repeats" not in found


def test_a_concatenation_in_a_loop_is_sized_but_repeats(tmp_path: Path) -> None:
    found = failed_under_a_limit(tmp_path, "concatenated", 40)
    assert found["kind"] == "bytes concatenation" and found["code"] == "blob += piece"
    assert found["size_mb"] % 8 == 0 and found["size_mb"] >= 64
    assert found["repeats"] is True  # the invocation would have gone on allocating


def test_what_fails_in_an_append_loop_is_one_item_not_the_need(tmp_path: Path) -> None:
    found = failed_under_a_limit(tmp_path, "appended", 1_000_000)
    assert found["function"] == "appended" and found["repeats"] is True
    assert found.get("size_mb", 0.0) < 1.0  # one item (or the list's growth, unsized)
