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

from tuner.lifecycle import LIVE, State, Verdict
from tuner.model import Change, Decision, FunctionRef, Intent, Knob, Mode, Severity
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
    state TEXT NOT NULL,
    verdict TEXT,
    knob TEXT,
    before_value REAL,
    after_value REAL,
    summary TEXT NOT NULL DEFAULT '',
    advice TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    judged_windows INTEGER NOT NULL DEFAULT 0,
    channels TEXT NOT NULL DEFAULT '[]',
    grp TEXT NOT NULL DEFAULT '',
    facts TEXT NOT NULL DEFAULT '{}',
    undoes TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS decisions_function_time ON decisions(function, time);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions(time);
CREATE INDEX IF NOT EXISTS decisions_state ON decisions(state);
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
    "id, time, function, rule, action, severity, mode, state, verdict, knob, before_value, "
    "after_value, summary, advice, reason, judged_windows, channels, grp, facts, undoes"
)

SCHEMA_VERSION = 2
"""``PRAGMA user_version`` of a store this version writes (1: outcome and verification)."""

_MIGRATE_FROM_1 = """
ALTER TABLE decisions ADD COLUMN state TEXT NOT NULL DEFAULT 'planned';
ALTER TABLE decisions ADD COLUMN verdict TEXT;
ALTER TABLE decisions ADD COLUMN judged_windows INTEGER NOT NULL DEFAULT 0;
UPDATE decisions SET
  state = CASE
    WHEN outcome = 'applied' AND verification IN ('improved', 'unchanged', 'worse')
      THEN verification
    WHEN outcome = 'rolled-back' AND action = 'rollback' THEN 'applied'
    ELSE outcome END,
  verdict = CASE outcome
    WHEN 'observed' THEN 'observe' WHEN 'recommended' THEN 'recommend'
    WHEN 'notified' THEN 'notify' WHEN 'skipped' THEN 'skip' ELSE 'apply' END,
  judged_windows = COALESCE(
    (SELECT CAST(value AS INTEGER) FROM state WHERE key = 'verify:' || decisions.id), 0);
DELETE FROM state WHERE key LIKE 'verify:%';
DROP INDEX IF EXISTS decisions_verification;
ALTER TABLE decisions DROP COLUMN outcome;
ALTER TABLE decisions DROP COLUMN verification;
CREATE INDEX IF NOT EXISTS decisions_state ON decisions(state);
"""
"""Version 1 kept the guard's verdict and the decision's fate in one ``outcome`` column
and the verification apart; version 2 keeps the lifecycle's states (tuner.lifecycle)."""

_LIVE = tuple(s.value for s in LIVE)


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
        self._db = connect(self.path)
        self._migrate()

    def _migrate(self) -> None:
        """Create the tables, or bring a store written by an earlier version up to date."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(decisions)")}
        with self._tx() as db:
            if columns and "undoes" not in columns:  # written before rollbacks were linked
                db.execute("ALTER TABLE decisions ADD COLUMN undoes TEXT NOT NULL DEFAULT ''")
            if "outcome" in columns:
                for statement in _MIGRATE_FROM_1.split(";"):
                    if statement.strip():
                        db.execute(statement)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

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

    _insert = f"INSERT OR REPLACE INTO decisions ({_COLUMNS}) VALUES ({', '.join('?' * 20)})"

    @staticmethod
    def _row(d: Decision) -> tuple[Any, ...]:
        c = d.change
        return (
            d.id, d.time, d.ref.key, d.rule, d.action, d.severity.value, d.mode.value,
            d.state.value, d.verdict.value if d.verdict else None,
            c.knob.value if c else None, c.before if c else None,
            c.after if c else None, d.summary, d.advice, d.reason,
            d.judged_windows, json.dumps(list(d.channels)),
            d.group, json.dumps(_finite(d.facts), default=_json_default, allow_nan=False),
            d.undoes,
        )  # fmt: skip

    @staticmethod
    def _decision(row: tuple[Any, ...]) -> Decision:
        (id_, time, function, rule, action, severity, mode, state, verdict, knob, before, after,
         summary, advice, reason, judged_windows, channels, grp, facts, undoes) = row  # fmt: skip
        change = None
        if knob is not None:
            change = Change(Knob(knob), _number(before), _number(after) or 0)
        return Decision(
            id=id_, time=time, ref=FunctionRef.parse(function), rule=rule, action=action,
            severity=Severity(severity), mode=Mode(mode), state=State(state),
            verdict=Verdict(verdict) if verdict else None,
            facts=json.loads(facts), change=change, summary=summary, advice=advice,
            reason=reason, judged_windows=judged_windows,
            channels=tuple(json.loads(channels)), group=grp, undoes=undoes,
        )  # fmt: skip

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
        """Decisions after a time whose change is, was or may be live, oldest first.

        A decision still ``applying`` belongs to an intent a crash left open: it may be live.

        ``with_facts=False`` leaves the facts out (empty), which the guard does not need
        and which make up most of the cost of reading a day of history.
        """
        columns = _COLUMNS if with_facts else _COLUMNS.replace(", facts", ", '{}'")
        sql = (
            f"SELECT {columns} FROM decisions WHERE time >= ? "
            f"AND state IN ({', '.join('?' * len(_LIVE))}) ORDER BY time, rowid"
        )
        with self._lock:
            rows = self._db.execute(sql, (since, *_LIVE)).fetchall()
        return [self._decision(r) for r in rows]

    def unsettled_rollbacks(self) -> list[Decision]:
        """Rollbacks that went live but whose reversed change is not yet marked rolled back."""
        undo = ", ".join(f"u.{c.strip()}" for c in _COLUMNS.split(","))
        sql = (
            f"SELECT {undo} FROM decisions u JOIN decisions o ON o.id = u.undoes "
            "WHERE u.undoes != '' AND u.state = ? AND o.state != ? ORDER BY u.time, u.rowid"
        )
        with self._lock:
            rows = self._db.execute(sql, (State.APPLIED.value, State.ROLLED_BACK.value)).fetchall()
        return [self._decision(r) for r in rows]

    def pending_verification(self) -> list[Decision]:
        """Changes that went live and have not been judged yet, oldest first."""
        sql = (
            f"SELECT {_COLUMNS} FROM decisions WHERE state = ? AND undoes = '' "
            "ORDER BY time, rowid"
        )
        with self._lock:
            rows = self._db.execute(sql, (State.APPLIED.value,)).fetchall()
        return [self._decision(r) for r in rows]

    # ------------------------------------------------------------ intents

    def begin_intent(self, intent: Intent, decision: Decision) -> None:
        """Write down a change and its decision (state applying) before it is applied."""
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
            "DELETE FROM decisions WHERE time < ? AND state != ? "
            "AND NOT (state = ? AND undoes = '') "
            "AND id NOT IN (SELECT decision_id FROM intents WHERE state = 'open')"
        )
        args = (before, State.APPLYING.value, State.APPLIED.value)
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
