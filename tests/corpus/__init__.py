"""The public corpus: Lambda log lines and Kubernetes objects quoted in public places.

Every item keeps the address it was quoted at.  The corpus is split by that address
(:func:`split_of`), so that every line of one thread falls on the same side: the
detectors' signatures are written from the ``fitting`` part and scored on the
``held-out`` part (``bench/bench_detection.py``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

CORPUS = Path(__file__).parent
LAMBDA_FILE = CORPUS / "lambda.yaml"
KUBERNETES_FILE = CORPUS / "kubernetes.yaml"

Split = Literal["fitting", "held-out"]
LAMBDA_KINDS = ("oom", "timeout", "init_timeout", "init_failure", "other", "none")
KUBERNETES_KINDS = ("oom", "eviction", "node_oom", "restart_unknown", "backoff", "none")


def split_of(source: str) -> Split:
    """The part an item belongs to: by the CRC-32 of its source address, odd is held out."""
    return "held-out" if zlib.crc32(source.encode()) % 2 else "fitting"


class CorpusError(ValueError):
    """An item of a corpus file that does not say what it must."""


@dataclass(frozen=True)
class LambdaLine:
    """One Lambda log line and what it shows."""

    source: str
    runtime: str
    kind: str
    text: str
    batch: int = 1
    """2 for lines added after the signatures were fixed."""

    @property
    def split(self) -> Split:
        """The part of the corpus the line belongs to."""
        return split_of(self.source)


@dataclass(frozen=True)
class KubeItem:
    """One Kubernetes object (a pod, or an Event) and what it shows."""

    source: str
    kind: str
    pod: dict[str, Any] | None
    event: dict[str, Any] | None
    container: str | None
    over_request: bool | None
    attributed: bool | None
    batch: int = 1

    @property
    def split(self) -> Split:
        """The part of the corpus the object belongs to."""
        return split_of(self.source)


def _items(path: Path) -> list[dict[str, Any]]:
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(items, list):
        raise CorpusError(f"{path.name}: the file must be a list of items")
    return items


def _field(path: Path, index: int, item: Any, name: str, kinds: tuple[str, ...] = ()) -> Any:
    if not isinstance(item, dict) or name not in item:
        raise CorpusError(f"{path.name}: item {index + 1} has no {name!r}")
    value = item[name]
    if name == "source" and not str(value).startswith("https://"):
        raise CorpusError(f"{path.name}: item {index + 1}: 'source' must be an https address")
    if kinds and value not in kinds:
        raise CorpusError(f"{path.name}: item {index + 1}: {name!r} {value!r} not in {kinds}")
    return value


def lambda_lines(split: Split | None = None, path: Path = LAMBDA_FILE) -> list[LambdaLine]:
    """The corpus's Lambda lines (of one part, or all)."""
    lines = [
        LambdaLine(
            source=_field(path, i, item, "source"),
            runtime=str(_field(path, i, item, "runtime")),
            kind=_field(path, i, item, "kind", LAMBDA_KINDS),
            text=str(_field(path, i, item, "text")),
            batch=int(item.get("batch", 1)),
        )
        for i, item in enumerate(_items(path))
    ]
    return [line for line in lines if split is None or line.split == split]


def kubernetes_items(split: Split | None = None, path: Path = KUBERNETES_FILE) -> list[KubeItem]:
    """The corpus's Kubernetes objects (of one part, or all)."""
    found = []
    for i, item in enumerate(_items(path)):
        source = _field(path, i, item, "source")
        kind = _field(path, i, item, "kind", KUBERNETES_KINDS)
        if ("pod" in item) == ("event" in item):
            raise CorpusError(f"{path.name}: item {i + 1} needs exactly one of 'pod' or 'event'")
        found.append(
            KubeItem(
                source,
                kind,
                item.get("pod"),
                item.get("event"),
                item.get("container"),
                item.get("over_request"),
                item.get("attributed"),
                int(item.get("batch", 1)),
            )
        )
    return [item for item in found if split is None or item.split == split]
