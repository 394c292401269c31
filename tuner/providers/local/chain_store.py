"""The host's durable record of chains (handover) and splits, in its SQLite file.

A chain is one logical invocation made of links: it is named by the request id of the
invocation that began it, keeps the event it began with, and each link's state waits
here until it runs.  Every step is a transaction, so a host killed at any moment leaves
each link either waiting, running (run again at the next start: at least once) or done.
A split is recorded when its invocation ends: how many parts, how many failed, and
whether the merged result came back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.providers.local.recording import SqliteFile
from tuner.store.sqlite import transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chains (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    event TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    links INTEGER NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS chains_by_end ON chains (function, ended);
CREATE TABLE IF NOT EXISTS chain_links (
    chain TEXT NOT NULL REFERENCES chains (id),
    link INTEGER NOT NULL,
    state TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    ready REAL NOT NULL,
    PRIMARY KEY (chain, link)
);
CREATE INDEX IF NOT EXISTS chain_links_waiting ON chain_links (status, ready);
CREATE TABLE IF NOT EXISTS splits (
    id INTEGER PRIMARY KEY,
    function TEXT NOT NULL,
    request TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    parts INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    merged INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS splits_by_end ON splits (function, end);
"""

RUNNING, DONE, FAILED, WAITING = "running", "done", "failed", "waiting"


@dataclass(frozen=True, slots=True)
class LinkRef:
    """One link of one chain."""

    chain: str
    link: int


@dataclass(frozen=True, slots=True)
class LinkTask:
    """A link taken to run: its function, the event the chain began with, and its state."""

    ref: LinkRef
    function: str
    event: Any
    state: dict[str, Any]
    attempt: int


@dataclass(frozen=True, slots=True)
class Chain:
    """A chain as recorded: how far it got and how it ended."""

    id: str
    function: str
    status: str
    """running, done or failed."""
    links: int
    result: Any
    error: str
    started: float
    ended: float | None


@dataclass(frozen=True, slots=True)
class Split:
    """One invocation that ran its event in parts."""

    function: str
    end: float
    parts: int
    failed: int
    merged: bool


class ChainStore(SqliteFile):
    """Chains, their waiting links and the splits, in the host's SQLite file."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def begin(
        self, ref: LinkRef, function: str, event: Any, state: dict[str, Any], now: float
    ) -> None:
        """Record a new chain whose first link handed ``state`` over: link 2 waits."""
        with transaction(self._db, self._lock):
            self._db.execute(
                "INSERT INTO chains (id, function, event, started, links, status)"
                " VALUES (?, ?, ?, ?, 2, ?)",
                (ref.chain, function, json.dumps(event), now, RUNNING),
            )
            self._wait(LinkRef(ref.chain, 2), state, now)

    def advance(self, ref: LinkRef, state: dict[str, Any], now: float) -> None:
        """A link handed over: it is done, and the next one waits with ``state``."""
        following = LinkRef(ref.chain, ref.link + 1)
        with transaction(self._db, self._lock):
            self._set_link(ref, DONE)
            self._wait(following, state, now)
            self._db.execute(
                "UPDATE chains SET links = ? WHERE id = ?", (following.link, ref.chain)
            )

    def finish(self, ref: LinkRef, result: Any, now: float) -> None:
        """The last link returned: the chain is done with its result."""
        with transaction(self._db, self._lock):
            self._set_link(ref, DONE)
            self._db.execute(
                "UPDATE chains SET status = ?, result = ?, ended = ? WHERE id = ?",
                (DONE, json.dumps(result), now, ref.chain),
            )

    def fail(self, ref: LinkRef, error: str, now: float, retry_at: float | None) -> None:
        """A link failed: it waits again until ``retry_at``, or (None) the chain fails."""
        with transaction(self._db, self._lock):
            if retry_at is not None:
                self._db.execute(
                    "UPDATE chain_links SET status = ?, ready = ? WHERE chain = ? AND link = ?",
                    (WAITING, retry_at, ref.chain, ref.link),
                )
                return
            self._set_link(ref, FAILED)
            self._db.execute(
                "UPDATE chains SET status = ?, error = ?, ended = ? WHERE id = ?",
                (FAILED, error[:2000], now, ref.chain),
            )

    def take(self, now: float, room: dict[str, int]) -> list[LinkTask]:
        """Links due to run, oldest first, at most ``room[function]`` of each; marked running."""
        tasks: list[LinkTask] = []
        left = dict(room)
        with transaction(self._db, self._lock):
            rows = self._db.execute(
                "SELECT l.chain, l.link, l.state, l.attempts, c.function, c.event"
                " FROM chain_links l JOIN chains c ON c.id = l.chain"
                " WHERE l.status = ? AND l.ready <= ? ORDER BY l.ready LIMIT 256",
                (WAITING, now),
            ).fetchall()
            for chain, link, state, attempts, function, event in rows:
                if left.get(function, 0) <= 0:
                    continue
                left[function] -= 1
                self._db.execute(
                    "UPDATE chain_links SET status = ?, attempts = attempts + 1"
                    " WHERE chain = ? AND link = ?",
                    (RUNNING, chain, link),
                )
                ref = LinkRef(chain, link)
                tasks.append(
                    LinkTask(ref, function, json.loads(event), json.loads(state), attempts + 1)
                )
        return tasks

    def recover(self) -> int:
        """Links a stopped or killed host left running wait again (they run again from their
        state: at least once).  Returns how many."""
        with transaction(self._db, self._lock):
            cursor = self._db.execute(
                "UPDATE chain_links SET status = ? WHERE status = ?", (WAITING, RUNNING)
            )
            return cursor.rowcount

    def chain(self, chain_id: str) -> Chain | None:
        """One chain as recorded, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, function, status, links, result, error, started, ended FROM chains"
                " WHERE id = ?",
                (chain_id,),
            ).fetchone()
        if row is None:
            return None
        result = None if row[4] is None else json.loads(row[4])
        return Chain(row[0], row[1], row[2], row[3], result, row[5], row[6], row[7])

    def ended(self, functions: list[str], start: float, end: float) -> list[Chain]:
        """The chains of these functions that finished or failed in ``[start, end)``."""
        rows = self._in_window(
            "SELECT id, function, status, links, NULL, error, started, ended FROM chains",
            "ended",
            functions,
            start,
            end,
        )
        return [Chain(*row) for row in rows]

    def add_split(self, split: Split, request: str, start: float) -> None:
        """Record an invocation that ran in parts."""
        with transaction(self._db, self._lock):
            self._db.execute(
                "INSERT INTO splits (function, request, start, end, parts, failed, merged)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    split.function,
                    request,
                    start,
                    split.end,
                    split.parts,
                    split.failed,
                    int(split.merged),
                ),
            )

    def splits(self, functions: list[str], start: float, end: float) -> list[Split]:
        """The splits of these functions that ended in ``[start, end)``."""
        rows = self._in_window(
            "SELECT function, end, parts, failed, merged FROM splits", "end", functions, start, end
        )
        return [Split(f, e, p, x, bool(m)) for f, e, p, x, m in rows]

    def _wait(self, ref: LinkRef, state: dict[str, Any], now: float) -> None:
        self._db.execute(
            "INSERT INTO chain_links (chain, link, state, status, ready) VALUES (?, ?, ?, ?, ?)",
            (ref.chain, ref.link, json.dumps(state), WAITING, now),
        )

    def _set_link(self, ref: LinkRef, status: str) -> None:
        self._db.execute(
            "UPDATE chain_links SET status = ? WHERE chain = ? AND link = ?",
            (status, ref.chain, ref.link),
        )
