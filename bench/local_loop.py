"""The daemon over a local provider on the bundled rules, as the benchmarks run it."""

from __future__ import annotations

from pathlib import Path

from tuner.daemon.loop import Daemon, DaemonSettings, SystemClock
from tuner.engine import load_rules
from tuner.providers.local import LocalProvider, Settings, build
from tuner.store.audit import SqliteStore

ROOT = Path(__file__).resolve().parents[1]


def local_daemon(
    settings: Settings, store_path: Path, interval_s: float
) -> tuple[LocalProvider, SqliteStore, Daemon]:
    """A local provider (not started), a store and the daemon over them, windows of
    ``interval_s``, on the wall clock."""
    clock = SystemClock()
    provider = build(settings, clock=clock)
    store = SqliteStore(store_path)
    daemon = Daemon(
        providers=[provider],
        rules=load_rules([ROOT / "rules" / "default.yaml"]),
        store=store,
        clock=clock,
        settings=DaemonSettings(window_s=interval_s),
    )
    return provider, store, daemon
