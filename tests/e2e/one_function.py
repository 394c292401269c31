"""One function written fresh into a local host, and the daemon cycling on it in a thread."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.local_loop import local_daemon
from tuner.daemon.scheduling import run_forever
from tuner.providers.local import LocalProvider, Settings
from tuner.store.audit import SqliteStore

INTERVAL_S = 3.0


@dataclass
class Running:
    """The host and the store of a running daemon, and how to stop it."""

    provider: LocalProvider
    store: SqliteStore
    stop: threading.Event
    runner: threading.Thread

    def run_until(self, done: Callable[[], bool], seconds: float) -> None:
        """Let the daemon cycle until ``done()`` holds or ``seconds`` pass, then stop it."""
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline and not done():
                time.sleep(0.5)
        finally:
            self.stop.set()
            self.runner.join()


@contextlib.contextmanager
def one_function(tmp_path: Path, name: str, declaration: str, handler: str) -> Iterator[Running]:
    """A host with the function ``name`` and a daemon over it on the bundled rules.

    The daemon is stopped, and the host and store closed, when the block ends.
    """
    folder = tmp_path / "app" / "functions" / name
    folder.mkdir(parents=True)
    (folder / "function.yaml").write_text(declaration)
    (folder / "handler.py").write_text(handler)
    settings = Settings(
        functions_dir=tmp_path / "app", state_dir=tmp_path / "state", http_port=None
    )
    provider, store, daemon = local_daemon(settings, tmp_path / "tuner.db", INTERVAL_S)
    stop = threading.Event()
    runner = threading.Thread(target=run_forever, args=(daemon, INTERVAL_S), kwargs={"stop": stop})
    provider.start()
    runner.start()
    try:
        yield Running(provider, store, stop, runner)
    finally:
        stop.set()
        runner.join()
        provider.close()
        store.close()
