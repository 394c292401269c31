"""Reading YAML input safely: a size cap, UTF-8 checks, capped aliases and line numbers.

Rule files, ``tuner.yaml`` and notification settings are inputs a person (or a tool)
writes, so they are read with limits before anything walks them:

- a file larger than :data:`MAX_FILE_BYTES` (1 MB; ``TUNER_MAX_FILE_BYTES`` overrides)
  is refused before it is read;
- bytes that are not UTF-8 are reported with their line and column;
- aliases may add at most :data:`MAX_ALIAS_NODES` nodes to the document: the expanded
  size is counted on the node tree, where an alias is one shared node, so a 500-byte
  "billion laughs" file is refused in microseconds instead of taking gigabytes;
- an alias that contains itself, and nesting deeper than the parser can follow, are
  located problems, not crashes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tuner.domain.errors import ConfigError, Problem

MAX_FILE_BYTES = 1_000_000
"""The largest YAML file read, in bytes, unless ``TUNER_MAX_FILE_BYTES`` says otherwise."""

MAX_ALIAS_NODES = 100_000
"""How many nodes aliases may add to a document when expanded."""


def max_file_bytes() -> int:
    """The size cap in force: ``TUNER_MAX_FILE_BYTES`` when set to a positive integer."""
    raw = os.environ.get("TUNER_MAX_FILE_BYTES", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return MAX_FILE_BYTES


def read_text(path: str | Path, limit: int | None = None) -> str:
    """The UTF-8 text of a file; ConfigError when unreadable, too large or not UTF-8."""
    source = str(path)
    limit = max_file_bytes() if limit is None else limit
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise _too_large(source, size, limit)
            data = f.read(limit + 1)  # a file that grows (or a pipe) is capped too
    except IsADirectoryError:
        raise ConfigError([Problem(source, None, "is a folder, not a file")]) from None
    except OSError as exc:
        raise ConfigError([Problem(source, None, f"cannot read: {exc.strerror}")]) from None
    except ValueError:  # a NUL in the name
        raise ConfigError([Problem(repr(source), None, "not a file name")]) from None
    if len(data) > limit:
        raise _too_large(source, len(data), limit)
    return decode(data, source)


def _too_large(source: str, size: int, limit: int) -> ConfigError:
    return ConfigError(
        [
            Problem(
                source,
                None,
                f"file is {size:,} bytes, larger than the limit of {limit:,} "
                "(TUNER_MAX_FILE_BYTES raises it)",
            )
        ]
    )


def decode(data: bytes, source: str) -> str:
    """UTF-8 text (a BOM allowed); a ConfigError locating the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        byte = data[exc.start : exc.start + 1].hex()
        raise ConfigError(
            [Problem(source, line, f"not UTF-8: byte 0x{byte} at column {column}")]
        ) from None


# ---------------------------------------------------------------- parsing


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *base', merged below
            continue
        key = loader.construct_object(key_node)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a key must be a plain value, not a list or mapping",
                key_node.start_mark,
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _AliasError(Exception):
    def __init__(self, message: str, node: yaml.Node):
        super().__init__(message)
        self.message = message
        self.line = node.start_mark.line + 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def expanded_size(root: yaml.Node, limit: int) -> int:
    """How many nodes the tree has with every alias expanded, counted without expanding.

    Shared nodes (aliases) are counted once per use from a memo, so the count costs
    time in the number of distinct nodes.  Raises ``_AliasError`` past ``limit`` or
    when an alias contains itself.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            size = 1 + sum(sizes[id(c)] for c in _children(node))
            if size > limit:
                raise _AliasError("aliases expand", node)
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise _AliasError("an alias refers to a node that contains it", node)
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise _AliasError("an alias refers to a node that contains it", child)
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _distinct_nodes(root: yaml.Node) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(_children(node))
    return len(seen)


def _lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            out[path + (k,)] = key.start_mark.line + 1
            _lines(value, path + (k,), out)
            out[path + (k,)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, path + (i,), out)


def nearest_line(
    lines: Mapping[tuple[Any, ...], int], loc: tuple[Any, ...], shortest: int = 0
) -> int | None:
    """The line of ``loc``, or of the nearest enclosing path at least ``shortest`` long."""
    for n in range(len(loc), shortest - 1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def load_yaml(
    text: str, source: str, max_alias_nodes: int = MAX_ALIAS_NODES
) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse YAML safely, returning the data and a map from data path to line number.

    The text is parsed once into a node tree; its expanded size is checked before the
    data is constructed from it and before the line numbers are collected.
    """
    try:
        loader = _UniqueKeyLoader(text)  # reading checks the characters already
        try:
            node = loader.get_single_node()
            if node is not None:
                limit = _distinct_nodes(node) + max_alias_nodes
                expanded_size(node, limit)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
        lines: dict[tuple[Any, ...], int] = {}
        if node is not None:
            _lines(node, (), lines)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(source, line, f"invalid YAML: {problem}")]) from None
    except _AliasError as exc:
        message = exc.message
        if message == "aliases expand":
            message = f"aliases expand to more than {max_alias_nodes:,} extra nodes"
        raise ConfigError([Problem(source, exc.line, f"invalid YAML: {message}")]) from None
    except RecursionError:
        raise ConfigError([Problem(source, None, "invalid YAML: nested too deeply")]) from None
    return data, lines


def load_mapping(
    text: str, source: str, what: str
) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    """A YAML document that must be a mapping (empty: ``{}``); ConfigError saying ``what`` it is."""
    data, lines = load_yaml(text, source)
    if data is None:
        return {}, lines
    if not isinstance(data, dict):
        raise ConfigError([Problem(source, 1, what)])
    return data, lines


def load_yaml_file(path: str | Path) -> tuple[str, Any, dict[tuple[Any, ...], int]]:
    """Read and parse a YAML file with every limit above: its text, data and line map."""
    text = read_text(path)
    data, lines = load_yaml(text, str(path))
    return text, data, lines
