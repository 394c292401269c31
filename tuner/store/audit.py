"""The audit store: every decision, change intents and loop state, in one SQLite file.

SQLite in WAL mode, one connection guarded by a lock (the loop's worker threads share
it), every write committed at once so that a crash loses nothing already recorded.  A
decision the loop makes again cycle after cycle is one row: ``seen`` counts the cycles
and ``last_seen`` says when the last one ran (:mod:`tuner.decisions.repeats`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from tuner.decisions.repeats import REPEATABLE, Repeats
from tuner.domain.decisions import Decision, Intent
from tuner.domain.lifecycle import LIVE, IntentState, State
from tuner.domain.model import Change, FunctionRef, Knob
from tuner.domain.ports import CycleRecord
from tuner.store.claiming import StoreHolder, guard_store
from tuner.store.rows import ROW_LENGTH, decision_of, decision_row, facts_json
from tuner.store.schema import COLUMNS, READ, SCHEMA_VERSION, migrate
from tuner.store.sqlite import connect, transaction

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

_END_RUNS = (
    "UPDATE decisions SET seen = ? - run + 1, last_seen = ?, run = NULL "
    "WHERE run IS NOT NULL AND id NOT IN (SELECT value FROM json_each(?))"
)
"""Runs the cycle did not go on with end at the previous cycle, their count stored."""

_LIVE = tuple(s.value for s in LIVE)


class SqliteStore:
    """The default :class:`tuner.domain.ports.Store`: a SQLite file (or ``:memory:``)."""

    def __init__(self, path: str | Path, *, hold: bool = False):
        """Open (or create) a store; ``hold``: claim it for this daemon alone (StoreError if taken)."""
        self.path = str(path)
        self._holder: StoreHolder | None = None
        if self.path != ":memory:":
            self._holder = guard_store(self.path, SCHEMA_VERSION, hold=hold)
        self._lock = threading.RLock()
        self._db = connect(self.path)
        self._migrate()
        self._repeats = self._open_runs()
        """What the last cycle recorded: a decision made again is counted, not written again."""

    def _migrate(self) -> None:
        """Create the tables, or bring a store written by an earlier version up to date."""
        with self._tx() as db:
            migrate(db)

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
        rows = [decision_row(d) for d in decisions]
        with self._tx() as db:
            db.executemany(self._insert, rows)
        self._repeats.drop({d.id for d in decisions})  # a run rewritten is a run ended

    def record_cycle(self, record: CycleRecord) -> list[Decision]:
        """Write a cycle's record in one transaction, and return its ``made`` as recorded.

        ``writes`` are written as they are.  A decision in ``made`` (nothing was applied for
        it: :data:`tuner.decisions.repeats.REPEATABLE`) that says the same as in the
        previous cycle is not written again, and is returned with its record's id, ``seen``
        and ``last_seen``; the others are written.
        """
        at, writes, made, state = record.at, record.writes, record.made, record.state
        split = self._repeats.split(made, at, record.max_gap_s)
        again = json.dumps([d.id for d in split.seen_again], check_circular=False)
        runs = {d.id for d in split.new if d.state in REPEATABLE}
        with self._tx() as db:
            row = db.execute("SELECT number, time FROM cycle").fetchone()
            number, previous = (row[0], row[1]) if row else (0, at)
            db.execute(_END_RUNS, (number, previous, again))
            db.executemany(self._insert, [decision_row(d) for d in writes])
            db.executemany(
                self._insert,
                [decision_row(d, number + 1 if d.id in runs else None) for d in split.new],
            )
            db.execute("INSERT OR REPLACE INTO cycle VALUES (0, ?, ?)", (number + 1, at))
            db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)", list(state.items()))
        self._repeats.recorded(split)
        self._repeats.drop({d.id for d in writes})
        return split.decisions

    def _open_runs(self) -> Repeats:
        """The runs the last cycle recorded that may go on (their facts left out)."""
        columns = READ.replace(", facts", ", '{}'")
        with self._lock:
            last = self._db.execute("SELECT time FROM cycle").fetchone()
            rows = self._db.execute(
                f"SELECT {columns} FROM decisions WHERE run IS NOT NULL ORDER BY rowid"
            ).fetchall()
        return Repeats([decision_of(r) for r in rows], last[0] if last else None)

    _insert = (
        f"INSERT OR REPLACE INTO decisions ({COLUMNS}, run) VALUES ({', '.join('?' * ROW_LENGTH)})"
    )

    def decisions(
        self, ref: FunctionRef | None = None, since: float | None = None, limit: int = 1000
    ) -> list[Decision]:
        """Decisions, oldest first (the newest ``limit``), optionally for one function.

        ``since`` keeps the decisions made (or made again) at or after that time.
        """
        where: list[str] = []
        args: list[object] = []
        if ref is not None:
            where.append("function = ?")
            args.append(ref.key)
        if since is not None:
            where.append("(last_seen >= ? OR (run IS NOT NULL AND (SELECT time FROM cycle) >= ?))")
            args.extend((since, since))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT {READ} FROM decisions {clause} ORDER BY time DESC, rowid DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [decision_of(r) for r in reversed(rows)]

    def get(self, decision_id: str) -> Decision | None:
        """One decision by id."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {READ} FROM decisions WHERE id = ?", (decision_id,)
            ).fetchone()
        return decision_of(row) if row else None

    def applied_since(self, since: float, *, with_facts: bool = True) -> list[Decision]:
        """Decisions after a time whose change is, was or may be live, oldest first.

        A decision still ``applying`` belongs to an intent a crash left open: it may be live.

        ``with_facts=False`` leaves the facts out (empty), which the guard does not need
        and which make up most of the cost of reading a day of history.
        """
        columns = COLUMNS if with_facts else COLUMNS.replace(", facts", ", '{}'")
        sql = (
            f"SELECT {columns} FROM decisions WHERE time >= ? "
            f"AND state IN ({', '.join('?' * len(_LIVE))}) ORDER BY time, rowid"
        )
        with self._lock:
            rows = self._db.execute(sql, (since, *_LIVE)).fetchall()
        return [decision_of(r) for r in rows]

    def unsettled_rollbacks(self) -> list[Decision]:
        """Rollbacks that went live but whose reversed change is not yet marked rolled back."""
        undo = ", ".join(f"u.{c.strip()}" for c in COLUMNS.split(","))
        sql = (
            f"SELECT {undo} FROM decisions u JOIN decisions o ON o.id = u.undoes "
            "WHERE u.undoes != '' AND u.state = ? AND o.state != ? ORDER BY u.time, u.rowid"
        )
        with self._lock:
            rows = self._db.execute(sql, (State.APPLIED.value, State.ROLLED_BACK.value)).fetchall()
        return [decision_of(r) for r in rows]

    def pending_verification(self) -> list[Decision]:
        """Changes that went live and have not been judged yet, oldest first."""
        sql = (
            f"SELECT {COLUMNS} FROM decisions WHERE state = ? AND undoes = '' ORDER BY time, rowid"
        )
        with self._lock:
            rows = self._db.execute(sql, (State.APPLIED.value,)).fetchall()
        return [decision_of(r) for r in rows]

    # ------------------------------------------------------------ intents

    def begin_intent(self, intent: Intent, decision: Decision) -> None:
        """Write down a change and its decision (state applying) before it is applied."""
        changes = json.dumps([[c.knob.value, c.before, c.after] for c in intent.changes])
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO intents VALUES (?, ?, ?, ?, ?, ?)",
                (
                    intent.id,
                    intent.decision_id,
                    intent.ref.key,
                    changes,
                    intent.created,
                    IntentState.OPEN.value,
                ),
            )
            db.execute(self._insert, decision_row(decision))
        self._repeats.drop({decision.id})

    def finish_intent(self, intent_id: str, state: IntentState, decision: Decision) -> None:
        """Mark an intent done, failed or abandoned and record the final decision, at once."""
        with self._tx() as db:
            db.execute("UPDATE intents SET state = ? WHERE id = ?", (state.value, intent_id))
            db.execute(self._insert, decision_row(decision))
        self._repeats.drop({decision.id})

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
                state=IntentState(r[5]),
            )
            for r in rows
        ]

    def prune(self, before: float) -> int:
        """Delete decisions, finished intents and functions not seen since ``before``; return how many decisions.

        A decision goes once it was last made before ``before``.  Unfinished work stays: a
        change still being verified, and one whose intent is open.
        SQLite reuses the freed pages, so the file stops growing at the retention's size.
        """
        sql = (
            "DELETE FROM decisions WHERE last_seen < ? AND run IS NULL AND state != ? "
            "AND NOT (state = ? AND undoes = '') "
            "AND id NOT IN (SELECT decision_id FROM intents WHERE state = 'open')"
        )
        args = (before, State.APPLYING.value, State.APPLIED.value)
        with self._tx() as db:
            deleted = db.execute(sql, args).rowcount
            db.execute("DELETE FROM intents WHERE created < ? AND state != 'open'", (before,))
            db.execute("DELETE FROM functions WHERE seen < ?", (before,))
        return int(deleted)

    # ------------------------------------------------------------ the fleet

    def remember_functions(self, seen: float, facts: Mapping[str, Mapping[str, Any]]) -> None:
        """Keep these functions' facts (by key) as seen at ``seen``: one row a function."""
        rows = [(key, seen, facts_json(f)) for key, f in facts.items()]
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO functions VALUES (?, ?, ?)", rows)

    def functions(self) -> dict[str, tuple[float, dict[str, Any]]]:
        """Every function remembered, by key: when it was last seen and its facts then."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, seen, facts FROM functions ORDER BY key"
            ).fetchall()
        return {key: (seen, json.loads(facts)) for key, seen, facts in rows}

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
