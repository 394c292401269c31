"""Functions generated at random that run out of memory, in six shapes of allocation.

Each generated function is a ``handler.py`` and a ``function.yaml`` for the local host,
deployed below what it needs.  The six shapes are the ways Python code commonly holds a
lot of memory, and each tells a trace something different about its size:

- ``bytearray``: one ``bytearray`` made in a helper nested in another function, its size
  written in one of several ways (over several lines, with a shift, from the event);
- ``list-append``: a list grown by appending items in a loop;
- ``dict-of-strings``: a dict of string keys and values filled in a loop;
- ``bytes-concat``: ``bytes`` concatenated again and again (``blob += chunk``);
- ``str-join``: a large ``str.join`` over parts made first;
- ``list-of-lists``: rows of lists built by a comprehension.

The names, the nesting, the way the size is written and the sizes themselves are drawn
from a seeded generator, so a run can be repeated.  Nothing here states what a function
needs: that is measured by running it at a high limit (``bench_sizing.py``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHAPES = (
    "bytearray",
    "list-append",
    "dict-of-strings",
    "bytes-concat",
    "str-join",
    "list-of-lists",
)
MB = 1024 * 1024
_NAMES = ("build", "render", "collect", "assemble", "prepare", "load", "gather", "compose")
_VARIABLES = ("buf", "data", "block", "payload", "chunk", "region", "store", "frame")


@dataclass(frozen=True, slots=True)
class Hog:
    """One generated function: its code, its event, the memory it is deployed with."""

    name: str
    shape: str
    aim_mb: int
    """About how much it allocates (the generator's aim; its real need is measured)."""
    memory_mb: int
    handler: str
    event: dict[str, Any]
    timeout_s: int

    def declaration(self, rate_per_s: float, tracing: str) -> str:
        """Its ``function.yaml``: deployed below its need, with steady traffic."""
        return (
            f"memory_mb: {self.memory_mb}\n"
            f"timeout_s: {self.timeout_s}\n"
            f"tracing: {{mode: {tracing}}}\n"
            "traffic:\n"
            f"  rate_per_s: {rate_per_s}\n"
            f"  events: [{_flow(self.event)}]\n"
        )


def _flow(event: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{key}: {value}" for key, value in event.items()) + "}"


def generate(
    rng: random.Random, per_shape: int, first: int = 1, low_mb: int = 180, high_mb: int = 520
) -> list[Hog]:
    """``per_shape`` functions of every shape (numbered from ``first``), deployed at 128 MB,
    each aiming at a need in ``[low_mb, high_mb]``, with a timeout long enough for a busy
    machine (60 s)."""
    hogs = []
    for index in range(first, first + per_shape):
        for shape in SHAPES:
            aim = rng.randint(low_mb, high_mb)
            handler, event = _WRITERS[shape](rng, aim)
            hogs.append(Hog(f"{shape}-{index}", shape, aim, 128, handler, event, timeout_s=60))
    return hogs


def write(hogs: list[Hog], directory: Path, rate_per_s: float, tracing: str) -> Path:
    """Write the functions into ``directory/functions``; returns ``directory``."""
    for hog in hogs:
        folder = directory / "functions" / hog.name
        folder.mkdir(parents=True)
        (folder / "function.yaml").write_text(hog.declaration(rate_per_s, tracing))
        (folder / "handler.py").write_text(hog.handler)
    return directory


def _bytearray(rng: random.Random, aim: int) -> tuple[str, dict[str, Any]]:
    outer, inner = rng.sample(_NAMES, 2)
    var = rng.choice(_VARIABLES)
    size = rng.choice(
        (
            "size_mb * MB",
            "size_mb << 20",
            "size_mb * 1024 * 1024",
            "(\n            size_mb * MB\n        )",
        )
    )
    source = (
        "MB = 1024 * 1024\n\n\n"
        f"def {outer}(event):\n"
        f"    def {inner}(size_mb):\n"
        f"        {var} = bytearray({size})\n"
        f"        {var}[0] = 1\n"
        f"        return {var}\n\n"
        f"    return {inner}(int(event['mb']))\n\n\n"
        "def handler(event, context):\n"
        f"    result = {outer}(event)\n"
        "    return len(result)\n"
    )
    return source, {"mb": aim - 12}


def _list_append(rng: random.Random, aim: int) -> tuple[str, dict[str, Any]]:
    var = rng.choice(("items", "rows", "records", "entries"))
    item = rng.choice((512, 1024, 2048, 4096))
    count = (aim - 12) * MB // (item + 33 + 8)
    step = f"{var}.append(b'%08d' % index + bytes(event['item'] - 8))"
    return _filled_in_a_loop(var, "[]", step), {"count": count, "item": item}


def _dict_of_strings(rng: random.Random, aim: int) -> tuple[str, dict[str, Any]]:
    var = rng.choice(("table", "lookup", "cache", "by_key"))
    width = rng.choice((200, 400, 800, 1600))
    per_entry = width + 49 + 60 + 3 * 8 * 2  # value, key, the table's share
    count = (aim - 12) * MB // per_entry
    step = f"{var}[f'key-{{index:09d}}'] = str(index) * (event['width'] // 9)"
    return _filled_in_a_loop(var, "{}", step), {"count": count, "width": width}


def _filled_in_a_loop(var: str, empty: str, step: str) -> str:
    """A handler that fills ``var`` (starting ``empty``) with ``step`` for each index."""
    return (
        "def handler(event, context):\n"
        f"    {var} = {empty}\n"
        "    for index in range(event['count']):\n"
        f"        {step}\n"
        f"    return len({var})\n"
    )


def _bytes_concat(rng: random.Random, aim: int) -> tuple[str, dict[str, Any]]:
    var = rng.choice(("blob", "body", "stream", "joined"))
    chunks = rng.randint(6, 12)
    chunk_mb = max(1, (aim - 12) // 2 // chunks)  # the old and the new copy at the end
    source = (
        "def handler(event, context):\n"
        f"    {var} = b''\n"
        "    piece = bytes(event['chunk_mb'] * 1024 * 1024)\n"
        "    for _ in range(event['chunks']):\n"
        f"        {var} += piece\n"
        f"    return len({var})\n"
    )
    return source, {"chunks": chunks, "chunk_mb": chunk_mb}


def _str_join(rng: random.Random, aim: int) -> tuple[str, dict[str, Any]]:
    width = rng.choice((256, 1024, 4096))
    parts = (aim - 12) * MB // (2 * width + 49 + 8)  # each part, and its copy in the result
    build = rng.choice(
        (
            "    parts = [str(index % 10) * event['width'] for index in range(event['parts'])]\n",
            "    parts = []\n"
            "    for index in range(event['parts']):\n"
            "        parts.append(chr(97 + index % 26) * event['width'])\n",
        )
    )
    source = (
        f"def handler(event, context):\n{build}    text = ''.join(parts)\n    return len(text)\n"
    )
    return source, {"parts": parts, "width": width}


def _list_of_lists(rng: random.Random, aim: int) -> tuple[str, dict[str, Any]]:
    cols = rng.choice((100, 250, 1000))
    row = rng.choice(
        (
            ("[0] * event['cols']", 8),
            ("list(range(event['cols']))", 8 + 28),
            ("[float(col) for col in range(event['cols'])]", 8 + 24),
        )
    )
    rows = (aim - 12) * MB // (cols * row[1] + 56)
    source = (
        "def handler(event, context):\n"
        f"    grid = [{row[0]} for _ in range(event['rows'])]\n"
        "    return len(grid)\n"
    )
    return source, {"rows": rows, "cols": cols}


_WRITERS = {
    "bytearray": _bytearray,
    "list-append": _list_append,
    "dict-of-strings": _dict_of_strings,
    "bytes-concat": _bytes_concat,
    "str-join": _str_join,
    "list-of-lists": _list_of_lists,
}
