"""The audit store: every decision, change intents and loop state, in one SQLite file.

SQLite in WAL mode, one connection guarded by a lock (the loop's worker threads share
it), every write committed at once so that a crash loses nothing already recorded.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from tuner.model import (
    Change,
    Decision,
    FunctionRef,
    Intent,
    Knob,
    Mode,
    Outcome,
    Severity,
    Verification,
)
from tuner.sqlite import connect, transaction
from tuner.storeguard import StoreHolder, guard_store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id TEXT PRIMARY KEY,
    time REAL NOT NULL,
    function TEXT NOT NULL,
    rule TEXT NOT NULL,
    action TEXT NOT NULL,
    severity TEXT NOT NULL,
    mode TEXT NOT NULL,
    outcome TEXT NOT NULL,
    knob TEXT,
    before_value REAL,
    after_value REAL,
    summary TEXT NOT NULL DEFAULT '',
    advice TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    verification TEXT,
    channels TEXT NOT NULL DEFAULT '[]',
    grp TEXT NOT NULL DEFAULT '',
    facts TEXT NOT NULL DEFAULT '{}',
    undoes TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS decisions_function_time ON decisions(function, time);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions(time);
CREATE INDEX IF NOT EXISTS decisions_verification ON decisions(verification, outcome);
CREATE TABLE IF NOT EXISTS intents (
    id TEXT PRIMARY KEY,
    decision_id TEXT NOT NULL,
    function TEXT NOT NULL,
    changes TEXT NOT NULL,
    created REAL NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_COLUMNS = (
    "id, time, function, rule, action, severity, mode, outcome, knob, before_value, "
    "after_value, summary, advice, reason, verification, channels, grp, facts, undoes"
)


SCHEMA_VERSION = 1
"""The newest ``PRAGMA user_version`` of a store this version reads."""

_CHANGED = (Outcome.APPLIED.value, Outcome.ROLLED_BACK.value, Outcome.APPLYING.value)
"""Outcomes of decisions whose change is, or may be, live."""


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


class SqliteStore:
    """The default :class:`tuner.ports.Store`: a SQLite file (or ``:memory:``)."""

    def __init__(self, path: str | Path, *, hold: bool = False):
        """Open (or create) a store; ``hold``: claim it for this daemon alone (StoreError if taken)."""
        self.path = str(path)
        self._holder: StoreHolder | None = None
        if self.path != ":memory:":
            self._holder = guard_store(self.path, SCHEMA_VERSION, hold=hold)
        self._lock = threading.RLock()
        self._db = connect(self.path, _SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(decisions)")}
        if "undoes" not in columns:  # a store written before rollbacks were linked
            self._db.execute("ALTER TABLE decisions ADD COLUMN undoes TEXT NOT NULL DEFAULT ''")

    def close(self) -> None:
        """Close the database (a checkpoint flushes the write-ahead log)."""
        with self._lock:
            self._db.close()
        if self._holder is not None:
            self._holder.release()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, self._lock)

    # ------------------------------------------------------------ decisions

    def record(self, decision: Decision) -> None:
        """Write a decision (insert or replace by id)."""
        self.record_many([decision])

    def record_many(self, decisions: list[Decision]) -> None:
        """Write several decisions in one transaction."""
        rows = [self._row(d) for d in decisions]
        with self._tx() as db:
            db.executemany(self._insert, rows)

    _insert = f"INSERT OR REPLACE INTO decisions ({_COLUMNS}) VALUES ({', '.join('?' * 19)})"

    @staticmethod
    def _row(d: Decision) -> tuple[Any, ...]:
        c = d.change
        return (
            d.id, d.time, d.ref.key, d.rule, d.action, d.severity.value, d.mode.value,
            d.outcome.value, c.knob.value if c else None, c.before if c else None,
            c.after if c else None, d.summary, d.advice, d.reason,
            d.verification.value if d.verification else None, json.dumps(list(d.channels)),
            d.group, json.dumps(_finite(d.facts), default=_json_default, allow_nan=False),
            d.undoes,
        )  # fmt: skip

    @staticmethod
    def _decision(row: tuple[Any, ...]) -> Decision:
        (id_, time, function, rule, action, severity, mode, outcome, knob, before, after,
         summary, advice, reason, verification, channels, grp, facts, undoes) = row  # fmt: skip
        change = None
        if knob is not None:
            change = Change(Knob(knob), _number(before), _number(after) or 0)
        return Decision(
            id=id_, time=time, ref=FunctionRef.parse(function), rule=rule, action=action,
            severity=Severity(severity), mode=Mode(mode), outcome=Outcome(outcome),
            facts=json.loads(facts), change=change, summary=summary, advice=advice,
            reason=reason, verification=Verification(verification) if verification else None,
            channels=tuple(json.loads(channels)), group=grp, undoes=undoes,
        )  # fmt: skip

    def set_outcome(
        self,
        decision_id: str,
        outcome: Outcome | None = None,
        verification: Verification | None = None,
        reason: str | None = None,
    ) -> None:
        """Update what became of a decision."""
        sets: list[str] = []
        args: list[str] = []
        for column, value in (
            ("outcome", outcome),
            ("verification", verification),
            ("reason", reason),
        ):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(value.value if hasattr(value, "value") else value)
        if not sets:
            return
        with self._tx() as db:
            db.execute(f"UPDATE decisions SET {', '.join(sets)} WHERE id = ?", (*args, decision_id))

    def decisions(
        self, ref: FunctionRef | None = None, since: float | None = None, limit: int = 1000
    ) -> list[Decision]:
        """Decisions, oldest first (the newest ``limit``), optionally for one function."""
        where: list[str] = []
        args: list[object] = []
        if ref is not None:
            where.append("function = ?")
            args.append(ref.key)
        if since is not None:
            where.append("time >= ?")
            args.append(since)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT {_COLUMNS} FROM decisions {clause} ORDER BY time DESC, rowid DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [self._decision(r) for r in reversed(rows)]

    def get(self, decision_id: str) -> Decision | None:
        """One decision by id."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM decisions WHERE id = ?", (decision_id,)
            ).fetchone()
        return self._decision(row) if row else None

    def applied_since(self, since: float, *, with_facts: bool = True) -> list[Decision]:
        """Applied, rolled back or still applying decisions after a time, oldest first.

        A decision still ``applying`` belongs to an intent a crash left open: it may be live.

        ``with_facts=False`` leaves the facts out (empty), which the guard does not need
        and which make up most of the cost of reading a day of history.
        """
        columns = _COLUMNS if with_facts else _COLUMNS.replace(", facts", ", '{}'")
        sql = (
            f"SELECT {columns} FROM decisions WHERE time >= ? AND outcome IN (?, ?, ?) "
            "ORDER BY time, rowid"
        )
        with self._lock:
            rows = self._db.execute(sql, (since, *_CHANGED)).fetchall()
        return [self._decision(r) for r in rows]

    def unsettled_rollbacks(self) -> list[Decision]:
        """Rollbacks that went live but whose reversed change is not yet marked rolled back."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM decisions WHERE action = 'rollback' AND outcome = ? "
                "ORDER BY time, rowid",
                (Outcome.APPLIED.value,),
            ).fetchall()
        return [self._decision(r) for r in rows]

    def pending_verification(self) -> list[Decision]:
        """Applied decisions whose effect has not been judged yet, oldest first."""
        sql = (
            f"SELECT {_COLUMNS} FROM decisions WHERE outcome = ? AND verification = ? "
            "ORDER BY time, rowid"
        )
        with self._lock:
            rows = self._db.execute(
                sql, (Outcome.APPLIED.value, Verification.PENDING.value)
            ).fetchall()
        return [self._decision(r) for r in rows]

    # ------------------------------------------------------------ intents

    def begin_intent(self, intent: Intent, decision: Decision) -> None:
        """Write down a change and its decision (outcome applying) before it is applied."""
        changes = json.dumps([[c.knob.value, c.before, c.after] for c in intent.changes])
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO intents VALUES (?, ?, ?, ?, ?, ?)",
                (intent.id, intent.decision_id, intent.ref.key, changes, intent.created, "open"),
            )
            db.execute(self._insert, self._row(decision))

    def finish_intent(self, intent_id: str, state: str, decision: Decision) -> None:
        """Mark an intent done, failed or abandoned and record the final decision, at once."""
        with self._tx() as db:
            db.execute("UPDATE intents SET state = ? WHERE id = ?", (state, intent_id))
            db.execute(self._insert, self._row(decision))

    def open_intents(self) -> list[Intent]:
        """Intents that were begun and never finished."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, decision_id, function, changes, created, state FROM intents "
                "WHERE state = 'open' ORDER BY created"
            ).fetchall()
        return [
            Intent(
                id=r[0],
                decision_id=r[1],
                ref=FunctionRef.parse(r[2]),
                changes=tuple(Change(Knob(k), b, a) for k, b, a in json.loads(r[3])),
                created=r[4],
                state=r[5],
            )  # fmt: skip
            for r in rows
        ]

    def prune(self, before: float) -> int:
        """Delete decisions and finished intents older than ``before``; return how many decisions.

        Unfinished work stays: a change still being verified, and one whose intent is open.
        SQLite reuses the freed pages, so the file stops growing at the retention's size.
        """
        sql = (
            "DELETE FROM decisions WHERE time < ? AND outcome != ? "
            "AND NOT (outcome = ? AND verification IS ?) "
            "AND id NOT IN (SELECT decision_id FROM intents WHERE state = 'open')"
        )
        args = (before, Outcome.APPLYING.value, Outcome.APPLIED.value, Verification.PENDING.value)
        with self._tx() as db:
            deleted = db.execute(sql, args).rowcount
            db.execute("DELETE FROM intents WHERE created < ? AND state != 'open'", (before,))
        return int(deleted)

    # ------------------------------------------------------------ state

    def get_state(self, key: str) -> str | None:
        """A small piece of loop state by key."""
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def put_state(self, key: str, value: str) -> None:
        """Store a small piece of loop state."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, value))

    def delete_state(self, key: str) -> None:
        """Forget a piece of loop state (absent keys are fine)."""
        with self._tx() as db:
            db.execute("DELETE FROM state WHERE key = ?", (key,))


def _finite(value: Any) -> Any:
    """The facts with NaN and infinite numbers replaced by None (unknown), at any depth."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    f = float(value)
    return int(f) if f.is_integer() else f
