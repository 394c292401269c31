"""A tuner daemon process over a FileProvider, for the crash tests.

Usage: ``python -m tests.safety.crash_daemon STORE STATE``.  It settles open intents
(``reconcile``), runs one cycle and prints the outcomes as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.safety.file_provider import FileProvider
from tests.safety.harness import default_rules
from tuner.loop import Daemon
from tuner.store import SqliteStore


def main(store_path: str, state_path: str) -> None:
    """Reconcile, run one cycle and print what became of each decision."""
    store = SqliteStore(store_path)
    daemon = Daemon(providers=[FileProvider(Path(state_path))], rules=default_rules(), store=store)
    settled = daemon.reconcile()
    report = daemon.run_cycle()
    store.close()
    print(json.dumps({
        "reconciled": [d.outcome.value for d in settled],
        "cycle": [d.outcome.value for d in report.decisions],
        "errors": report.errors,
    }))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
