"""The host's SQLite records: invocations, dependency calls, deployments, live configs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.domain.model import FunctionConfig
from tuner.providers.local.executions import Execution
from tuner.store.sqlite import connect, transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS invocations (
    id INTEGER PRIMARY KEY,
    function TEXT NOT NULL,
    revision INTEGER NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    duration_ms REAL NOT NULL,
    outcome TEXT NOT NULL,
    peak_memory_mb REAL,
    cold_start INTEGER NOT NULL,
    init_ms REAL,
    records INTEGER,
    cache_hits INTEGER NOT NULL DEFAULT 0,
    cache_misses INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS invocations_by_end ON invocations (function, end);
CREATE TABLE IF NOT EXISTS dependency_calls (
    invocation_id INTEGER NOT NULL REFERENCES invocations (id),
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    time REAL NOT NULL,
    latency_ms REAL NOT NULL,
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS dependency_calls_by_time ON dependency_calls (function, time);
CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY,
    function TEXT NOT NULL,
    time REAL NOT NULL,
    revision INTEGER NOT NULL,
    before TEXT,
    after TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS functions (
    name TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    config TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class InvocationRecord:
    """One finished invocation as stored."""

    function: str
    revision: int
    start: float
    end: float
    duration_ms: float
    outcome: str
    peak_memory_mb: float | None
    cold_start: bool
    init_ms: float | None
    records: int | None
    cache_hits: int = 0
    cache_misses: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class DependencyCallRecord:
    """One call from a function to a named dependency as stored."""

    function: str
    name: str
    time: float
    latency_ms: float
    error: str


@dataclass(frozen=True, slots=True)
class Deployment:
    """One configuration change of one function."""

    function: str
    time: float
    revision: int
    before: FunctionConfig | None
    after: FunctionConfig


def config_to_json(config: FunctionConfig) -> str:
    """The configuration's knobs and environment as JSON (the revision is stored apart)."""
    return json.dumps(
        {
            "memory_mb": config.memory_mb,
            "timeout_s": config.timeout_s,
            "batch_size": config.batch_size,
            "fan_out": config.fan_out,
            "split_above_kb": config.split_above_kb,
            "concurrency": config.concurrency,
            "cache_ttl_s": config.cache_ttl_s,
            "handover_s": config.handover_s,
            "fused": config.fused,
            "near_replica": config.near_replica,
            "environment": dict(config.environment),
        },
        sort_keys=True,
    )


def config_from_json(text: str, revision: int) -> FunctionConfig:
    """Inverse of :func:`config_to_json`."""
    data = {
        "handover_s": 0.0,
        "split_above_kb": 0,
        "fused": 0,
        "near_replica": 0,
        **json.loads(text),
    }  # stored before they existed
    return FunctionConfig(revision=str(revision), **data)


class SqliteFile:
    """A SQLite file of the host's, used from several threads behind one lock."""

    def __init__(self, path: Path, schema: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = connect(path, schema)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def _in_window(
        self, select: str, time_column: str, functions: Sequence[str], start: float, end: float
    ) -> list[tuple[Any, ...]]:
        """Rows of ``select`` for the functions whose ``time_column`` is in ``[start, end)``."""
        marks = ",".join("?" * len(functions))
        query = (
            f"{select} WHERE function IN ({marks})"
            f" AND {time_column} >= ? AND {time_column} < ? ORDER BY {time_column}"
        )
        with self._lock:
            return self._db.execute(query, (*functions, start, end)).fetchall()


class Records(SqliteFile):
    """Thread-safe access to the host's SQLite file: invocations, calls, deployments."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def add_invocation(
        self, invocation: InvocationRecord, calls: Iterable[DependencyCallRecord]
    ) -> None:
        """Store a finished invocation and its dependency calls."""
        with transaction(self._db, self._lock):
            cursor = self._db.execute(
                "INSERT INTO invocations (function, revision, start, end, duration_ms, outcome,"
                " peak_memory_mb, cold_start, init_ms, records, cache_hits, cache_misses, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    invocation.function,
                    invocation.revision,
                    invocation.start,
                    invocation.end,
                    invocation.duration_ms,
                    invocation.outcome,
                    invocation.peak_memory_mb,
                    int(invocation.cold_start),
                    invocation.init_ms,
                    invocation.records,
                    invocation.cache_hits,
                    invocation.cache_misses,
                    invocation.error,
                ),
            )
            self._db.executemany(
                "INSERT INTO dependency_calls (invocation_id, function, name, time, latency_ms,"
                " error) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (cursor.lastrowid, c.function, c.name, c.time, c.latency_ms, c.error)
                    for c in calls
                ],
            )

    def add_execution(
        self,
        function: str,
        revision: int,
        start: float,
        end: float,
        records: int | None,
        execution: Execution,
        cold: bool = False,
        init_ms: float | None = None,
    ) -> None:
        """Store what one invocation did, as the host measured it, with its dependency calls."""
        invocation = InvocationRecord(
            function=function,
            revision=revision,
            start=start,
            end=end,
            duration_ms=execution.duration_ms,
            outcome=execution.outcome,
            peak_memory_mb=execution.peak_memory_mb,
            cold_start=cold,
            init_ms=init_ms,
            records=records,
            cache_hits=execution.cache_hits,
            cache_misses=execution.cache_misses,
            error=execution.error,
        )
        calls = [
            DependencyCallRecord(function, c.name, c.time, c.latency_ms, c.error)
            for c in execution.dependency_calls
        ]
        self.add_invocation(invocation, calls)

    def invocations(
        self, functions: Sequence[str], start: float, end: float
    ) -> list[InvocationRecord]:
        """Invocations of the given functions that finished in ``[start, end)``."""
        rows = self._in_window(
            "SELECT function, revision, start, end, duration_ms, outcome, peak_memory_mb,"
            " cold_start, init_ms, records, cache_hits, cache_misses, error FROM invocations",
            "end",
            functions,
            start,
            end,
        )
        return [
            InvocationRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), *r[8:])
            for r in rows
        ]

    def first_ooms(self, since: float) -> list[tuple[str, float]]:
        """Functions with an invocation killed for memory that ended at ``since`` or later, with
        when the first of them ended."""
        with self._lock:
            rows = self._db.execute(
                "SELECT function, MIN(end) FROM invocations"
                " WHERE outcome = 'oom' AND end >= ? GROUP BY function",
                (since,),
            ).fetchall()
        return [(str(name), float(end)) for name, end in rows]

    def dependency_calls(
        self, functions: Sequence[str], start: float, end: float
    ) -> list[DependencyCallRecord]:
        """Dependency calls of the given functions made in ``[start, end)``."""
        rows = self._in_window(
            "SELECT function, name, time, latency_ms, error FROM dependency_calls",
            "time",
            functions,
            start,
            end,
        )
        return [DependencyCallRecord(*row) for row in rows]

    def live_config(self, function: str) -> FunctionConfig | None:
        """The stored configuration of a function, or None when it was never deployed."""
        with self._lock:
            row = self._db.execute(
                "SELECT config, revision FROM functions WHERE name = ?", (function,)
            ).fetchone()
        return None if row is None else config_from_json(row[0], row[1])

    def deploy(
        self, function: str, before: FunctionConfig | None, after: FunctionConfig, time: float
    ) -> None:
        """Store ``after`` as the live configuration and record the deployment."""
        revision = int(after.revision)
        with transaction(self._db, self._lock):
            self._db.execute(
                "INSERT INTO functions (name, revision, config) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET revision = excluded.revision,"
                " config = excluded.config",
                (function, revision, config_to_json(after)),
            )
            self._db.execute(
                "INSERT INTO deployments (function, time, revision, before, after)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    function,
                    time,
                    revision,
                    None if before is None else config_to_json(before),
                    config_to_json(after),
                ),
            )

    def deployments(self, function: str | None = None) -> list[Deployment]:
        """Every recorded deployment, oldest first, optionally of one function."""
        query = "SELECT function, time, revision, before, after FROM deployments"
        arguments: tuple[str, ...] = ()
        if function is not None:
            query += " WHERE function = ?"
            arguments = (function,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", arguments).fetchall()
        return [
            Deployment(
                name,
                time,
                revision,
                None if before is None else config_from_json(before, revision - 1),
                config_from_json(after, revision),
            )
            for name, time, revision, before, after in rows
        ]
