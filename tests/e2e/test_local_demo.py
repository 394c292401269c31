"""The README's first command, end to end: the daemon on the local host fixes the examples.

Runs ``tuner run --for 45s --fresh`` for real in a scratch folder and asserts every outcome
from the store (decisions) and the notification outbox, never from log text.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.demo_run import DemoRun
from tuner.domain.lifecycle import State
from tuner.domain.model import Knob
from tuner.store.audit import SqliteStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(demo_run: DemoRun) -> tuple[Path, str]:
    return demo_run.db, demo_run.stdout


def _decisions(db: Path, name: str) -> list:  # type: ignore[type-arg]
    store = SqliteStore(db)
    try:
        return [d for d in store.decisions(limit=100_000) if d.ref.name == name]
    finally:
        store.close()


def _applied(db: Path, name: str) -> list:  # type: ignore[type-arg]
    return [d for d in _decisions(db, name) if d.applied and d.change is not None and not d.undoes]


def test_oom_fixed_with_one_memory_change(demo: tuple[Path, str]) -> None:
    db, _ = demo
    [change] = _applied(db, "report-builder")
    assert change.rule == "oom" and change.change.knob is Knob.MEMORY_MB
    assert change.change.after > change.change.before
    assert change.state is State.IMPROVED


def test_timeout_fixed_by_granularity_or_timeout(demo: tuple[Path, str]) -> None:
    db, _ = demo
    applied = _applied(db, "ledger-sync")
    assert applied and all(d.rule == "timeout" for d in applied)
    assert applied[0].change.knob in (Knob.BATCH_SIZE, Knob.FAN_OUT, Knob.TIMEOUT_S)
    assert applied[-1].state is State.IMPROVED


def test_a_job_longer_than_its_ceiling_is_fixed_by_handover(demo: tuple[Path, str]) -> None:
    db, stdout = demo
    [change] = _applied(db, "month-close")
    assert (change.rule, change.action, change.change.knob) == (
        "timeout",
        "handover",
        Knob.HANDOVER_S,
    )
    assert change.change.before == 0 and 0 < change.change.after < 2
    assert change.state is State.IMPROVED
    with sqlite3.connect(db.parent / "local.sqlite") as conn:
        chains = conn.execute(
            "SELECT status, links FROM chains WHERE function = 'month-close'"
        ).fetchall()
    done = [links for status, links in chains if status == "done"]
    assert done and min(done) >= 2 and not [c for c in chains if c[0] == "failed"]
    assert "handover on: " in stdout


def test_a_payload_over_its_memory_ceiling_is_fixed_by_splitting(demo: tuple[Path, str]) -> None:
    db, stdout = demo
    [change] = _applied(db, "catalog-index")
    assert (change.rule, change.action, change.change.knob) == ("oom", "split", Knob.FAN_OUT)
    assert change.change.before == 1 and change.change.after >= 3
    assert change.state is State.IMPROVED
    with sqlite3.connect(db.parent / "local.sqlite") as conn:
        splits = conn.execute(
            "SELECT parts, failed, merged FROM splits WHERE function = 'catalog-index'"
        ).fetchall()
    assert splits and all(row == (change.change.after, 0, 1) for row in splits)
    assert f"split into {change.change.after} parts: 0 OOMs, results merged" in stdout


def test_cache_turned_on_and_p95_falls(demo: tuple[Path, str]) -> None:
    db, _ = demo
    [change] = _applied(db, "price-lookup")
    assert change.change.knob is Knob.CACHE_TTL_S and change.change.after > 0
    assert change.state is State.IMPROVED
    before = change.facts["duration_p95_ms"]
    after = float(change.why.split("duration_p95_ms ")[1].split(" -> ")[1].split(";")[0])
    assert after < 0.8 * before, change.why


def test_dependency_outage_one_grouped_notification_no_change(demo: tuple[Path, str]) -> None:
    db, _ = demo
    for name in ("checkout", "refund-notifier"):
        decisions = _decisions(db, name)
        assert any(d.rule == "dependency-down" for d in decisions)
        assert not any(d.change is not None and d.applied for d in decisions)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT group_key, kind FROM notify_outbox WHERE group_key LIKE '%payments-api%'"
        ).fetchall()
    assert len([r for r in rows if r[1] != "resolved"]) == 1, rows


def test_healthy_function_left_alone(demo: tuple[Path, str]) -> None:
    db, _ = demo
    assert not [d for d in _decisions(db, "greeter") if d.change is not None]


def test_summary_and_explain_show_the_same_history(demo: tuple[Path, str]) -> None:
    db, stdout = demo
    assert "function" in stdout and "verified" in stdout and "report-builder" in stdout
    explain = subprocess.run(
        [sys.executable, "-m", "tuner.cli.main", "explain", "--json"],
        cwd=db.parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    records = json.loads(explain.stdout)
    store = SqliteStore(db)
    try:
        assert [r["id"] for r in records] == [d.id for d in store.decisions(limit=1000)]
    finally:
        store.close()
    for key in (
        "function",
        "rule",
        "action",
        "before",
        "after",
        "mode",
        "applied",
        "verdict",
        "state",
        "time",
    ):
        assert all(key in r for r in records)
    memory = [r for r in records if r["function"].endswith("report-builder") and r["applied"]]
    assert memory and memory[0]["state"] == "improved"
