"""The README's first command, run for real in a scratch folder."""

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


def run_demo(cwd: Path) -> DemoRun:
    """The daemon on the local host and the example functions, for 45 s."""
    run = subprocess.run(
        [sys.executable, "-m", "tuner.cli.main", "run", "--for", "45s", "--fresh"],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return DemoRun(cwd, run.stdout)
