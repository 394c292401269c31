"""Traces on disk: one JSON file per trace, a bounded ring of recent ones per function.

Layout: ``<root>/<function>/<start in ms>-<span id>.json``.  Saving a trace prunes the
oldest files of its function beyond ``keep``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from tuner.trace.model import Trace

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class TraceStore:
    """Recent traces of every function under one directory."""

    def __init__(self, root: Path, keep: int = 50) -> None:
        self.root = root
        self.keep = keep

    def save(self, trace: Trace, keep: int | None = None) -> Path:
        """Write a trace and prune its function's oldest ones beyond ``keep``."""
        if not _NAME.match(trace.function):
            raise ValueError(f"not a function name: {trace.function!r}")
        folder = self.root / trace.function
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{int(trace.start * 1000):015d}-{trace.span_id}.json"
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(trace.as_json()), encoding="utf-8")
        os.replace(partial, path)
        self._prune(folder, self.keep if keep is None else keep)
        return path

    def _prune(self, folder: Path, keep: int) -> None:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
        for old in names[: max(0, len(names) - keep)]:
            (folder / old).unlink(missing_ok=True)

    def functions(self) -> list[str]:
        """Functions that have traces."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.match(p.name))

    def traces(self, function: str, since: float | None = None) -> list[Trace]:
        """A function's stored traces, oldest first, started at or after ``since``."""
        return list(self.each(function, since))

    def each(self, function: str, since: float | None = None) -> Iterator[Trace]:
        """A function's stored traces one by one, oldest first (one in memory at a time)."""
        for path in self.files(function, since):
            trace = self.read(path)
            if trace is not None:
                yield trace

    def files(self, function: str, since: float | None = None) -> list[Path]:
        """The files of a function's traces that started at or after ``since``, oldest first."""
        folder = self.root / function
        if not _NAME.match(function) or not folder.is_dir():
            return []
        return [
            path
            for path in sorted(folder.glob("*.json"))
            if since is None or int(path.name.split("-", 1)[0]) >= since * 1000
        ]

    def read(self, path: Path) -> Trace | None:
        """The trace in one file; None when it was pruned meanwhile or cannot be read."""
        try:
            return Trace.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # pruned meanwhile, or written by an older version

    def all_traces(self, since: float | None = None) -> list[Trace]:
        """Every stored trace of every function, oldest first."""
        found = [t for f in self.functions() for t in self.traces(f, since)]
        return sorted(found, key=lambda t: t.start)
