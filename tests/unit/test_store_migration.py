"""A store written by the previous version (outcome + verification) migrates to the states."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tuner.domain.lifecycle import State, Verdict
from tuner.store.audit import SCHEMA_VERSION, SqliteStore

V1_SCHEMA = """
CREATE TABLE decisions (
    id TEXT PRIMARY KEY, time REAL NOT NULL, function TEXT NOT NULL, rule TEXT NOT NULL,
    action TEXT NOT NULL, severity TEXT NOT NULL, mode TEXT NOT NULL, outcome TEXT NOT NULL,
    knob TEXT, before_value REAL, after_value REAL, summary TEXT NOT NULL DEFAULT '',
    advice TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '', verification TEXT,
    channels TEXT NOT NULL DEFAULT '[]', grp TEXT NOT NULL DEFAULT '',
    facts TEXT NOT NULL DEFAULT '{}', undoes TEXT NOT NULL DEFAULT ''
);
CREATE INDEX decisions_verification ON decisions(verification, outcome);
CREATE TABLE intents (id TEXT PRIMARY KEY, decision_id TEXT NOT NULL, function TEXT NOT NULL,
    changes TEXT NOT NULL, created REAL NOT NULL, state TEXT NOT NULL);
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# (id, action, outcome, verification, undoes) -> (state, verdict)
ROWS = {
    ("observed", "more-memory", "observed", None, ""): (State.OBSERVED, Verdict.OBSERVE),
    ("recommended", "more-memory", "recommended", None, ""): (State.RECOMMENDED, Verdict.RECOMMEND),
    ("notified", "notify", "notified", None, ""): (State.NOTIFIED, Verdict.NOTIFY),
    ("skipped", "more-memory", "skipped", None, ""): (State.SKIPPED, Verdict.SKIP),
    ("applying", "more-memory", "applying", None, ""): (State.APPLYING, Verdict.APPLY),
    ("failed", "more-memory", "failed", None, ""): (State.FAILED, Verdict.APPLY),
    ("pending", "more-memory", "applied", "pending", ""): (State.APPLIED, Verdict.APPLY),
    ("improved", "more-memory", "applied", "improved", ""): (State.IMPROVED, Verdict.APPLY),
    ("unchanged", "more-memory", "applied", "unchanged", ""): (State.UNCHANGED, Verdict.APPLY),
    ("reversed", "more-memory", "rolled-back", "worse", ""): (State.ROLLED_BACK, Verdict.APPLY),
    ("undo", "rollback", "rolled-back", "worse", "reversed"): (State.APPLIED, Verdict.APPLY),
}


def test_a_version_1_store_migrates_to_the_lifecycle_states(tmp_path: Path) -> None:
    path = tmp_path / "tuner.db"
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    for i, (id_, action, outcome, verification, undoes) in enumerate(ROWS):
        db.execute(
            "INSERT INTO decisions (id, time, function, rule, action, severity, mode, outcome, "
            "knob, before_value, after_value, verification, facts, undoes) "
            "VALUES (?, ?, 'fake:f', 'oom', ?, 'critical', 'apply', ?, 'memory_mb', 256, 512, ?, ?, ?)",
            (id_, float(i), action, outcome, verification, json.dumps({"ooms": 3.0}), undoes),
        )
    db.execute("INSERT INTO state VALUES ('verify:pending', '2')")
    db.execute("INSERT INTO state VALUES ('streaks', '{}')")
    db.commit()
    db.close()

    store = SqliteStore(path)
    try:
        migrated = {d.id: (d.state, d.verdict) for d in store.decisions()}
        assert migrated == {key[0]: expected for key, expected in ROWS.items()}
        pending = store.get("pending")
        assert pending is not None and pending.judged_windows == 2
        assert pending.facts == {"ooms": 3.0} and pending.change is not None
        assert [d.id for d in store.pending_verification()] == ["pending"]
        assert store.get_state("verify:pending") is None
        assert store.get_state("streaks") == "{}"
    finally:
        store.close()
    db = sqlite3.connect(path)
    columns = {row[1] for row in db.execute("PRAGMA table_info(decisions)")}
    assert {"state", "verdict", "judged_windows"} <= columns
    assert not {"outcome", "verification"} & columns
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
    SqliteStore(path).close()  # opening a current store again changes nothing
