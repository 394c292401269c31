"""A provider whose live state is a JSON file, so that two processes see the same functions.

It stands in for a real platform in the crash tests: the daemon process that is killed
and the one that restarts both read and change the same file.  Setting the environment
variable ``SAFETY_CRASH_POINT`` to ``before-apply`` or ``after-apply`` makes ``apply``
stop at that point: it touches the file named by ``SAFETY_MARKER`` and waits to be killed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tuner.domain.errors import ConflictError, ProviderError
from tuner.domain.model import Change, FunctionConfig, FunctionRef, Target, WindowFacts

NAME = "file"


class FileProvider:
    """Functions, their windows and every apply call, held in one JSON file."""

    name = NAME

    def __init__(self, path: Path):
        self.path = path

    @staticmethod
    def create(path: Path, functions: Mapping[str, int], window: Mapping[str, Any]) -> None:
        """Write a fresh state: each function with its memory and the same window."""
        state = {
            "functions": {n: {"memory_mb": mb, "revision": 1} for n, mb in functions.items()},
            "window": dict(window),
            "applies": [],
        }
        path.write_text(json.dumps(state), encoding="utf-8")

    def load(self) -> dict[str, Any]:
        """The whole state."""
        state: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return state

    def _save(self, state: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.path)

    def _config(self, entry: Mapping[str, Any]) -> FunctionConfig:
        return FunctionConfig(memory_mb=entry["memory_mb"], revision=str(entry["revision"]))

    def targets(self) -> Sequence[Target]:
        """Every function in the file."""
        functions = self.load()["functions"]
        return [Target(FunctionRef(NAME, n), self._config(e)) for n, e in functions.items()]

    def observe(
        self, targets: Sequence[Target], start: float, end: float
    ) -> Mapping[FunctionRef, WindowFacts]:
        """The file's window, the same for every function."""
        window = self.load()["window"]
        return {t.ref: WindowFacts(t.ref, start, end, **window) for t in targets}

    def read(self, ref: FunctionRef) -> FunctionConfig:
        """The live configuration of one function."""
        functions = self.load()["functions"]
        if ref.name not in functions:
            raise ProviderError(f"no function {ref.name}")
        return self._config(functions[ref.name])

    def apply(
        self, target: Target, changes: Sequence[Change], *, reason: str = ""
    ) -> FunctionConfig:
        """Change the file, then stop at the crash point if one is set."""
        _crash_point("before-apply")
        state = self.load()
        entry = state["functions"][target.ref.name]
        if str(entry["revision"]) != target.config.revision:
            raise ConflictError("stale revision")
        for change in changes:
            entry[change.knob.value] = change.after
        entry["revision"] += 1
        state["applies"].append([target.ref.name, [[c.knob.value, c.after] for c in changes]])
        self._save(state)
        _crash_point("after-apply")
        return replace(self._config(entry))


def _crash_point(name: str) -> None:
    if os.environ.get("SAFETY_CRASH_POINT") != name:
        return
    Path(os.environ["SAFETY_MARKER"]).touch()
    time.sleep(600)  # the test kills the process here
