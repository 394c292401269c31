"""The outbox: messages and group state in SQLite, so nothing is lost across restarts.

A message goes ``queued`` -> ``sending`` (claimed with a lease) -> ``sent``.  A failed
attempt puts it back to ``queued`` with a later ``next_attempt_at``.  A message found
``sending`` with an expired lease was being sent when its process died: it may or may
not have arrived, so it becomes ``in-doubt`` (not sent again) unless its channel allows
re-sending.  ``dead`` messages were not delivered within the give-up time.

The tables live in the store's database file, on their own connection in WAL mode.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.notify.grouping import Changes, Group
from tuner.notify.messages import Message
from tuner.store.sqlite import connect, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    group_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    sent_at REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (channel, state, seq);
CREATE INDEX IF NOT EXISTS notify_outbox_state ON notify_outbox (state);
CREATE TABLE IF NOT EXISTS notify_outbox_functions (
    seq INTEGER NOT NULL,
    function TEXT NOT NULL,
    PRIMARY KEY (function, seq)
);
CREATE TABLE IF NOT EXISTS notify_groups (
    channel TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (channel, key)
);
"""

QUEUED, SENDING, SENT, IN_DOUBT, DEAD = "queued", "sending", "sent", "in-doubt", "dead"


@dataclass(frozen=True)
class Claim:
    """A message taken for sending, with the attempt it is on and when it was queued."""

    message: Message
    attempt: int
    created_at: float


@dataclass(frozen=True)
class Told:
    """A message as the dashboard lists it under a function it told about."""

    channel: str
    kind: str
    state: str
    created_at: float
    sent_at: float | None
    title: str
    text: str


@dataclass(frozen=True)
class OutboxRow:
    """One message's delivery record."""

    id: str
    channel: str
    group: str
    kind: str
    state: str
    attempts: int
    created_at: float
    next_attempt_at: float
    sent_at: float | None
    last_error: str | None


class Outbox:
    """The durable queue of messages and the persisted groups, on one SQLite connection."""

    def __init__(self, path: str | Path, owner: str):
        self.owner = owner
        self._lock = threading.Lock()
        self._db = connect(path, SCHEMA)
        self._db.execute("PRAGMA busy_timeout=5000")  # notify() must not wait long

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, self._lock)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def save(self, changes: Changes, messages: Sequence[Message] = (), now: float = 0.0) -> None:
        """Persist group changes and queue messages, all in one transaction.

        A group's state or deletion only applies over an older version, so snapshots
        written out of order never undo a newer change.
        """
        if not (changes.saved or changes.deleted or messages):
            return
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO notify_groups (channel, key, version, state) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (channel, key) DO UPDATE SET version = excluded.version,"
                " state = excluded.state WHERE excluded.version > notify_groups.version",
                changes.saved,
            )
            db.executemany(
                "DELETE FROM notify_groups WHERE channel = ? AND key = ? AND version < ?",
                changes.deleted,
            )
            for m in messages:
                seq = db.execute(
                    "INSERT INTO notify_outbox (id, channel, group_key, kind, body, state,"
                    " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (m.id, m.channel, m.group, m.kind, m.to_json(), QUEUED, now, now),
                ).lastrowid
                db.executemany(
                    "INSERT OR IGNORE INTO notify_outbox_functions VALUES (?, ?)",
                    [(seq, function) for function in m.functions],
                )

    def told_about(self, function: str, limit: int = 20) -> list[Told]:
        """The newest messages that told about a function, grouped ones included."""
        sql = (
            "SELECT o.channel, o.kind, o.state, o.created_at, o.sent_at, o.body"
            " FROM notify_outbox_functions f JOIN notify_outbox o ON o.seq = f.seq"
            " WHERE f.function = ? ORDER BY f.seq DESC LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (function, limit)).fetchall()
        told = []
        for channel, kind, state, created, sent, body in rows:
            message = Message.from_json(body)
            told.append(Told(channel, kind, state, created, sent, message.title, message.text))
        return told

    def load_groups(self) -> list[Group]:
        """Every persisted group."""
        with self._lock:
            rows = self._db.execute("SELECT state FROM notify_groups").fetchall()
        return [Group.from_dict(json.loads(state)) for (state,) in rows]

    def claim(self, channel: str, now: float, lease: float) -> Claim | None:
        """Take the channel's oldest unfinished message if it is queued and due.

        While an older message is being sent (by any process) nothing is claimed, so a
        channel's messages arrive in order.
        """
        head = (
            "SELECT seq, body, attempts, created_at, next_attempt_at, state FROM notify_outbox"
            " WHERE channel = ? AND state IN (?, ?) ORDER BY seq LIMIT 1"
        )
        params = (channel, QUEUED, SENDING)
        with self._lock:  # a read first: an idle channel never takes the write lock
            row = self._db.execute(head, params).fetchone()
        if not _claimable(row, now):
            return None
        with self._transaction() as db:
            row = db.execute(head, params).fetchone()  # again, now under the write lock
            if not _claimable(row, now):
                return None
            seq, body, attempts, created_at, _, _ = row
            db.execute(
                "UPDATE notify_outbox SET state = ?, attempts = attempts + 1, lease_owner = ?,"
                " lease_until = ? WHERE seq = ?",
                (SENDING, self.owner, now + lease, seq),
            )
        return Claim(Message.from_json(body), attempts + 1, created_at)

    def next_due(self, channel: str) -> float | None:
        """When the channel's oldest queued message is due, or None when none is queued."""
        with self._lock:
            row = self._db.execute(
                "SELECT next_attempt_at FROM notify_outbox WHERE channel = ? AND state = ?"
                " ORDER BY seq LIMIT 1",
                (channel, QUEUED),
            ).fetchone()
        return None if row is None else float(row[0])

    def mark_sent(self, message_id: str, now: float) -> None:
        """The message arrived."""
        self._finish(message_id, SENT, None, sent_at=now)

    def mark_retry(self, message_id: str, next_attempt_at: float, error: str) -> None:
        """The attempt failed and the message certainly did not arrive: try again later."""
        with self._transaction() as db:
            db.execute(
                "UPDATE notify_outbox SET state = ?, next_attempt_at = ?, last_error = ?,"
                " lease_owner = NULL, lease_until = NULL WHERE id = ? AND state = ?",
                (QUEUED, next_attempt_at, error, message_id, SENDING),
            )

    def mark_in_doubt(self, message_id: str, error: str) -> None:
        """The message may have arrived: it is not sent again."""
        self._finish(message_id, IN_DOUBT, error)

    def mark_dead(self, message_id: str, error: str) -> None:
        """The message could not be delivered within the give-up time."""
        self._finish(message_id, DEAD, error)

    def _finish(
        self, message_id: str, state: str, error: str | None, sent_at: float | None = None
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE notify_outbox SET state = ?, last_error = COALESCE(?, last_error),"
                " sent_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND state = ?",
                (state, error, sent_at, message_id, SENDING),
            )

    def recover(self, now: float, resend: Callable[[str], bool]) -> tuple[list[str], list[str]]:
        """Deal with messages whose sender died mid-send (their lease expired).

        Returns the ids queued again (``resend(channel)`` is true) and those now in doubt.
        """
        requeued: list[str] = []
        in_doubt: list[str] = []
        query = "SELECT id, channel FROM notify_outbox WHERE state = ? AND lease_until <= ?"
        with self._lock:
            if self._db.execute(query, (SENDING, now)).fetchone() is None:
                return requeued, in_doubt  # the usual case: no write transaction
        with self._transaction() as db:
            rows = db.execute(query, (SENDING, now)).fetchall()
            for message_id, channel in rows:
                again = resend(channel)
                db.execute(
                    "UPDATE notify_outbox SET state = ?, lease_owner = NULL, lease_until = NULL,"
                    " last_error = ? WHERE id = ?",
                    (
                        QUEUED if again else IN_DOUBT,
                        "the sender stopped while sending: it may have arrived",
                        message_id,
                    ),
                )
                (requeued if again else in_doubt).append(message_id)
        return requeued, in_doubt

    def prune(self, sent_before: float) -> int:
        """Delete delivered messages sent before a time; returns how many."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM notify_outbox WHERE state = ? AND sent_at < ?", (SENT, sent_before)
            )
            db.execute(
                "DELETE FROM notify_outbox_functions WHERE seq NOT IN (SELECT seq FROM notify_outbox)"
            )
            return cursor.rowcount

    def counts(self) -> dict[str, int]:
        """How many messages are in each state."""
        with self._lock:
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM notify_outbox GROUP BY state"
            ).fetchall()
        return {state: count for state, count in rows}

    def rows(self, state: str | None = None) -> list[OutboxRow]:
        """The delivery records, oldest first, optionally in one state."""
        query = (
            "SELECT id, channel, group_key, kind, state, attempts, created_at, next_attempt_at,"
            " sent_at, last_error FROM notify_outbox"
        )
        params: tuple[str, ...] = ()
        if state is not None:
            query += " WHERE state = ?"
            params = (state,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", params).fetchall()
        return [OutboxRow(*row) for row in rows]


def _claimable(row: tuple[Any, ...] | None, now: float) -> bool:
    """True for a queued head-of-line row that is due."""
    return row is not None and row[5] == QUEUED and row[4] <= now
