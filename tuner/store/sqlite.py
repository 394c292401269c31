"""SQLite conventions shared by every file tuner keeps: one connection, WAL, explicit transactions.

The store, the notification outbox and the local host's records each hold one
connection used from several threads behind a lock; writes go through
:func:`transaction`, which commits at once so that a crash loses nothing recorded.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 30.0


def connect(path: str | Path, schema: str = "") -> sqlite3.Connection:
    """Open (and create) a database for use from several threads, in WAL mode."""
    db = sqlite3.connect(
        str(path), check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    if schema:
        db.executescript(schema)
    return db


@contextmanager
def transaction(
    db: sqlite3.Connection, lock: threading.Lock | threading.RLock
) -> Iterator[sqlite3.Connection]:
    """Hold the lock and an immediate write transaction; commit on success, else roll back."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
