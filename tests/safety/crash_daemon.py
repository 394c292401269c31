"""A tuner process over a FileProvider, wired as in production, for the crash tests.

Usage: ``python -m tests.safety.crash_daemon CONFIG STATE``.  It builds the tuner from the
configuration file (store, rules, notifications) with a :class:`FileProvider` over STATE,
starts it (which settles open intents), runs one cycle and prints a ``RESULT`` line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.safety.file_provider import FileProvider
from tuner.daemon.config import load_config
from tuner.daemon.wiring import build


def main(config_path: str, state_path: str) -> None:
    """Start, run one cycle, close, and print what became of each decision."""
    tuner = build(load_config(config_path), providers=[FileProvider(Path(state_path))])
    tuner.start()
    try:
        report = tuner.daemon.run_cycle()
    finally:
        tuner.close()
    result = {"cycle": [d.state.value for d in report.decisions], "errors": report.errors}
    print("RESULT", json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
