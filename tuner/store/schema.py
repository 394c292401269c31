"""The audit store's tables, and how a store written by an earlier tuner is brought up to date.

``PRAGMA user_version`` holds the version a store was written by; :func:`migrate` runs
inside the transaction that opens a store.
"""

from __future__ import annotations

import sqlite3

SCHEMA = """
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
    undoes TEXT NOT NULL DEFAULT '',
    seen INTEGER NOT NULL DEFAULT 1,
    last_seen REAL,
    run INTEGER,
    kind TEXT NOT NULL DEFAULT 'finding',
    hold TEXT
);
CREATE INDEX IF NOT EXISTS decisions_function_time ON decisions(function, time);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions(time);
CREATE INDEX IF NOT EXISTS decisions_state ON decisions(state);
CREATE INDEX IF NOT EXISTS decisions_last_seen ON decisions(last_seen);
CREATE INDEX IF NOT EXISTS decisions_run ON decisions(run) WHERE run IS NOT NULL;
CREATE TABLE IF NOT EXISTS cycle (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    number INTEGER NOT NULL,
    time REAL NOT NULL
);
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
CREATE TABLE IF NOT EXISTS functions (
    key TEXT PRIMARY KEY,
    seen REAL NOT NULL,
    facts TEXT NOT NULL
);
"""

COLUMNS = (
    "id, time, function, rule, action, severity, mode, state, verdict, knob, before_value, "
    "after_value, summary, advice, reason, judged_windows, channels, grp, facts, undoes, "
    "seen, last_seen, kind, hold"
)
"""The columns a decision is written to (with ``run``) and read from (:data:`READ`)."""

READ = COLUMNS.replace(
    "seen, last_seen",
    "CASE WHEN run IS NULL THEN seen ELSE (SELECT number FROM cycle) - run + 1 END, "
    "CASE WHEN run IS NULL THEN last_seen ELSE (SELECT time FROM cycle) END",
)
"""A decision as read: a run that may still go on was seen in every cycle since it began.

``run`` is the number of the cycle that first made a decision that may be made again
(tuner.decisions.repeats), as long as every cycle since made it again; ``cycle`` holds the number
and time of the last cycle recorded.  So a decision made again costs no write at all:
its row is written once when it is first made, and once more when a cycle no longer
makes it (``seen`` and ``last_seen`` then stored, ``run`` cleared)."""

SCHEMA_VERSION = 4
"""``PRAGMA user_version`` of a store this version writes (1: outcome and verification;
2: one row per decision, however often it was made again; 3: without a decision's kind
and typed hold, and without the fleet's last facts)."""

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
and the verification apart; version 2 keeps the lifecycle's states (tuner.domain.lifecycle)."""

_MIGRATE_FROM_2 = """
ALTER TABLE decisions ADD COLUMN seen INTEGER NOT NULL DEFAULT 1;
ALTER TABLE decisions ADD COLUMN last_seen REAL;
ALTER TABLE decisions ADD COLUMN run INTEGER;
UPDATE decisions SET last_seen = time;
"""
"""Version 2 wrote a decision made again in each cycle as a new row each time; version 3
counts it on the first row (``seen``, ``last_seen``, ``run``)."""


_MIGRATE_FROM_3 = """
ALTER TABLE decisions ADD COLUMN kind TEXT NOT NULL DEFAULT 'finding';
ALTER TABLE decisions ADD COLUMN hold TEXT;
UPDATE decisions SET kind = CASE
    WHEN undoes != '' THEN 'rollback'
    WHEN action = 'resolved' THEN 'resolved'
    WHEN rule = 'telemetry' THEN 'telemetry'
    WHEN rule = 'manual' THEN 'manual'
    ELSE 'finding' END;
"""
"""Version 3 told a decision's kind from its action, rule and ``undoes``, and kept why it
was held back as a sentence only (kept in ``reason``: no hold is guessed from it)."""


def migrate(db: sqlite3.Connection) -> None:
    """Create the tables, or bring a store written by an earlier version up to date."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(decisions)")}
    if columns and "undoes" not in columns:  # written before rollbacks were linked
        db.execute("ALTER TABLE decisions ADD COLUMN undoes TEXT NOT NULL DEFAULT ''")
    if "outcome" in columns:
        _script(db, _MIGRATE_FROM_1)
    if columns and "seen" not in columns:
        _script(db, _MIGRATE_FROM_2)
    if columns and "kind" not in columns:
        _script(db, _MIGRATE_FROM_3)
    _script(db, SCHEMA)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _script(db: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)
