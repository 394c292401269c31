"""The store is an input too: check it before use, and let one daemon hold it at a time.

Before the store is opened for writing, :func:`check_store` refuses, with one line and
without changing a byte, a path that is a folder or cannot be written, a file that is
not SQLite, a store with damaged pages and a store written by a newer tuner.

:class:`StoreHolder` is the claim of one daemon on one store: an exclusive
``flock`` on ``<store>.lock`` beside the store, with the holder's pid, host and start
time written in it as JSON.  The operating system releases the lock when the holder's
process ends however it ends, so a daemon that is gone never blocks the next one (no
pid files to clean, no guessing from pids that may be reused).  SQLite's own locks do
not serve here: in WAL mode they let two writers take turns, and an exclusive locking
mode would lock out ``tuner explain`` and say nothing of who holds the store.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from tuner.domain.errors import ConfigError, Problem

_HEADER = b"SQLite format 3\x00"


class StoreError(ConfigError):
    """The store cannot be used as it is; one located line says why (exit 2 on the CLI)."""

    def __init__(self, path: str | Path, message: str):
        super().__init__([Problem(str(path), None, message)])


def lock_path(path: str | Path) -> Path:
    """The lock file beside a store: ``tuner.db`` -> ``tuner.db.lock``."""
    p = Path(path)
    return p.with_name(p.name + ".lock")


def check_store(path: str | Path, supported_version: int) -> None:
    """Refuse a store that cannot be used, before anything writes to it.

    A missing store is fine (it is created); its folder is created here.
    """
    p = Path(path)
    if p.is_dir():
        raise StoreError(p, "is a folder, not a store file; name a file, e.g. .tuner/tuner.db")
    parent = next((a for a in p.parents if a.exists()), None)
    if parent is not None and not parent.is_dir():
        raise StoreError(p, f"cannot create its folder: {parent} is a file")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(p, f"cannot create its folder: {exc.strerror}") from None
    if not os.access(p.parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise StoreError(p, "cannot be written (read-only file system or no permission)")
    if not p.exists() or p.stat().st_size == 0:
        return
    try:
        with p.open("rb") as f:
            header = f.read(len(_HEADER))
    except OSError as exc:
        raise StoreError(p, f"cannot be read: {exc.strerror}") from None
    if header != _HEADER:
        raise StoreError(p, "is not a tuner store (not a SQLite database); nothing was changed")
    _check_contents(p, supported_version)


def _check_contents(p: Path, supported_version: int) -> None:
    """The schema version and a quick check of every page, through a read-only connection."""
    try:
        db = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(p, f"cannot be opened: {exc}") from None
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > supported_version:
            raise StoreError(
                p,
                f"was written by a newer tuner (store schema {version}, this tuner reads up "
                f"to {supported_version}); upgrade tuner, nothing was changed",
            )
        problems = [str(r[0]) for r in db.execute("PRAGMA quick_check(3)").fetchall()]
    except sqlite3.DatabaseError as exc:
        raise StoreError(p, f"is damaged ({exc}); nothing was changed") from None
    finally:
        db.close()
    if problems != ["ok"]:
        problem = "; ".join(line.strip() for line in problems[0].splitlines() if line.strip())
        raise StoreError(
            p, f"is damaged ({problem}); restore a backup or move it away, nothing was changed"
        )


def describe_open_error(path: str | Path, exc: sqlite3.Error) -> StoreError:
    """A one-line StoreError for a SQLite error met while opening a store."""
    return StoreError(path, f"cannot be used: {exc}")


class StoreHolder:
    """An exclusive claim on a store for one daemon, released by :meth:`release` or on exit."""

    def __init__(self, path: str | Path):
        self.path = lock_path(path)
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the claim; StoreError naming the holder when another process has it."""
        try:
            f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        except OSError as exc:
            raise StoreError(self.path, f"cannot be written: {exc.strerror}") from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = _describe(f.read())
            f.close()
            store = self.path.with_name(self.path.name.removesuffix(".lock"))
            raise StoreError(
                store, f"in use by another tuner ({holder}); stop it or use another store"
            ) from None
        f.seek(0)
        f.truncate()
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}))
        f.flush()
        self._file = f

    def release(self) -> None:
        """Give the claim up (the lock file stays; an unlocked file claims nothing)."""
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _describe(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on {holder['host']} since {holder['since']}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not said who it is yet"


def guard_store(path: str | Path, supported_version: int, *, hold: bool) -> StoreHolder | None:
    """Check a store before it is opened and, for a daemon (``hold``), claim it."""
    check_store(path, supported_version)
    if not hold:
        return None
    holder = StoreHolder(path)
    holder.acquire()
    return holder


def ensure_unheld(path: str | Path) -> None:
    """StoreError naming the holder when a daemon holds the store (before it is deleted)."""
    if lock_path(path).exists():
        holder = StoreHolder(path)
        holder.acquire()
        holder.release()
