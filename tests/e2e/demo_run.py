"""``tuner run`` for real in a scratch folder, as the README has users type it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DemoRun:
    """What ``tuner run --for 45s --fresh`` left in a scratch folder, and what it printed."""

    cwd: Path
    stdout: str

    @property
    def db(self) -> Path:
        """The audit store of the run."""
        return self.cwd / ".tuner" / "tuner.db"


def tuner_run(cwd: Path, *args: str, timeout: float = 240) -> str:
    """``tuner run`` with ``args`` in ``cwd``, as a user types it; what it printed."""
    run = subprocess.run(
        [sys.executable, "-m", "tuner.cli.main", "run", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def run_demo(cwd: Path) -> DemoRun:
    """The daemon on the local host and the example functions, for 45 s."""
    return DemoRun(cwd, tuner_run(cwd, "--for", "45s", "--fresh", timeout=180))
