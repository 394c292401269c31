"""A decision the loop makes again in each cycle is one record: counted, not written again."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes import FakeClock, FakeProvider, RecordingNotifier
from tuner.cli.explaining import decision_line
from tuner.daemon.loop import Daemon, DaemonSettings
from tuner.decisions.documents import decision_json
from tuner.decisions.guard import GuardPolicy
from tuner.decisions.repeats import Repeats
from tuner.domain.decisions import Decision
from tuner.domain.holds import Hold, HoldKind
from tuner.domain.lifecycle import State, Verdict
from tuner.domain.model import FunctionConfig, FunctionRef, Knob, Mode, Severity, WindowFacts
from tuner.domain.ports import CycleRecord
from tuner.engine import load_rules
from tuner.store.audit import SCHEMA_VERSION, SqliteStore

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules" / "default.yaml"
HELD = GuardPolicy(max_changes_per_cycle=0)
CAP = HELD.fleet_cap
COOLDOWN = Hold(HoldKind.COOLDOWN, Knob.MEMORY_MB, since=0.0, until=600.0)
"""Every change is held back by the fleet's cap, cycle after cycle."""


def oom_window() -> WindowFacts:
    ref = FunctionRef("fake", "x")
    return WindowFacts(
        ref, 0, 0, invocations=20, errors=6, ooms=6, timeouts=0, peak_memory_mb=128.0
    )


def fleet(*names: str) -> FakeProvider:
    provider = FakeProvider()
    for name in names:
        provider.add(name, FunctionConfig(memory_mb=128, timeout_s=3.0))
        provider.windows[name] = oom_window()
    return provider


def daemon(
    provider: FakeProvider,
    store: SqliteStore,
    clock: FakeClock,
    *,
    notifier: RecordingNotifier | None = None,
    **settings: object,
) -> Daemon:
    return Daemon(
        providers=[provider],
        rules=load_rules([RULES]),
        store=store,
        clock=clock,
        notifier=notifier,
        settings=DaemonSettings(**{"window_s": 60.0, "guard_policy": HELD, **settings}),  # type: ignore[arg-type]
    )


def oom_rows(store: SqliteStore, name: str = "a") -> list[Decision]:
    return [d for d in store.decisions() if d.ref.name == name and d.action == "more-memory"]


def cycles(d: Daemon, clock: FakeClock, n: int) -> None:
    for _ in range(n):
        clock.advance(60)
        d.run_cycle()


def test_a_change_held_back_for_three_cycles_is_one_record_seen_three_times(tmp_path: Path) -> None:
    clock, provider = FakeClock(), fleet("a", "b")
    store = SqliteStore(tmp_path / "tuner.db")
    loop = daemon(provider, store, clock)
    first = clock.now() + 60
    cycles(loop, clock, 3)
    [row] = oom_rows(store)
    assert row.state is State.SKIPPED and "cap:" in row.why
    assert (row.seen, row.time, row.last_seen) == (3, first, clock.now())
    assert row.facts["ooms"] == 6.0  # the facts it rested on when it started
    assert len(oom_rows(store, "b")) == 1 and provider.applied == []
    # history still shows when it started and that it is still going
    still = {d.id for d in store.decisions(since=clock.now()) if d.rule == "oom"}
    assert still == {row.id, oom_rows(store, "b")[0].id}  # made again in the last cycle
    assert f"[3 cycles, last {decision_json(row)['last_seen']}]" in decision_line(row)
    assert decision_json(row)["seen"] == 3 and decision_json(row)["last_seen_at"] == clock.now()

    # a restart: the record of the last cycle is rebuilt from the store
    store.close()
    store = SqliteStore(tmp_path / "tuner.db")
    cycles(daemon(provider, store, clock), clock, 1)
    [row] = oom_rows(store)
    assert (row.seen, row.time, row.last_seen) == (4, first, clock.now())
    store.close()


def test_a_different_reason_a_gap_or_a_long_stop_makes_a_new_record(tmp_path: Path) -> None:
    clock, provider = FakeClock(), fleet("a")
    store = SqliteStore(tmp_path / "tuner.db")
    loop = daemon(provider, store, clock)
    cycles(loop, clock, 2)
    loop.settings = replace(
        loop.settings, guard_policy=GuardPolicy(max_changes_per_cycle=0, max_changes_per_hour=5)
    )
    cycles(loop, clock, 2)  # another reason
    assert [(d.seen, d.why.endswith("60 per hour)")) for d in oom_rows(store)] == [
        (2, True),
        (2, False),
    ]
    provider.windows["a"] = WindowFacts(
        FunctionRef("fake", "a"),
        0,
        0,
        invocations=20,
        errors=0,
        ooms=0,
        timeouts=0,
        peak_memory_mb=100.0,
    )
    cycles(loop, clock, 1)  # healthy for a cycle: the next OOM is a new occurrence
    provider.windows["a"] = oom_window()
    cycles(loop, clock, 1)
    assert [d.seen for d in oom_rows(store)] == [2, 2, 1]
    store.close()
    store = SqliteStore(tmp_path / "tuner.db")
    clock.advance(3600)  # stopped for an hour: a new record
    cycles(daemon(provider, store, clock), clock, 1)
    assert [d.seen for d in oom_rows(store)] == [2, 2, 1, 1]
    store.close()


def test_a_recommendation_and_a_notification_made_again_are_told_under_their_record() -> None:
    clock, provider, notifier = FakeClock(), fleet("a"), RecordingNotifier()
    store = SqliteStore(":memory:")
    loop = daemon(provider, store, clock, mode=Mode.RECOMMEND, notifier=notifier)
    cycles(loop, clock, 3)
    [row] = oom_rows(store)
    assert row.state is State.RECOMMENDED and row.seen == 3
    told = [d for d in notifier.sent if d.rule == "oom"]
    assert [d.id for d in told] == [row.id] * 3  # one record, that `tuner explain` finds
    assert [d.seen for d in told] == [1, 2, 3] and told[-1].time == clock.now()


class FailingOnce(SqliteStore):
    """A store whose next cycle's record fails (a full disk), then works again."""

    fail = False

    def record_cycle(self, record: CycleRecord) -> list[Decision]:
        if self.fail:
            self.fail = False
            raise sqlite3.OperationalError("database or disk is full")
        return super().record_cycle(record)


def test_a_failed_write_loses_nothing_the_run_goes_on_uncounted_for_that_cycle() -> None:
    clock, provider = FakeClock(), fleet("a")
    store = FailingOnce(":memory:")
    loop = daemon(provider, store, clock)
    cycles(loop, clock, 2)
    store.fail = True
    clock.advance(60)
    assert any("not recorded" in e for e in loop.run_cycle().errors)
    cycles(loop, clock, 2)
    [row] = oom_rows(store)
    assert (row.seen, row.last_seen) == (4, clock.now())


def skipped(id_: str, at: float, hold: Hold = CAP) -> Decision:
    return Decision(
        id=id_,
        time=at,
        ref=FunctionRef("fake", "a"),
        rule="oom",
        action="more-memory",
        severity=Severity.CRITICAL,
        mode=Mode.APPLY,
    ).with_verdict(Verdict.SKIP, hold=hold)


def test_a_run_costs_no_write_until_it_ends_and_is_never_pruned_while_it_goes_on(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "tuner.db")
    other = Decision(
        id="other",
        time=0.0,
        ref=FunctionRef("fake", "a"),
        rule="errors",
        action="notify",
        severity=Severity.WARNING,
        mode=Mode.APPLY,
    ).with_verdict(Verdict.NOTIFY)
    store.record_cycle(CycleRecord(0.0, [], [skipped("run", 0.0), other], {}, 120.0))
    changes = store._db.total_changes
    for i, at in enumerate((60.0, 120.0, 180.0), start=2):
        [again] = store.record_cycle(CycleRecord(at, [], [skipped(f"new-{i}", at)], {}, 120.0))
        assert (again.id, again.seen, again.last_seen) == ("run", i, at)
    # the first cycle ended the other's run; then only the last cycle's time was written
    assert store._db.total_changes - changes == 1 + 3
    assert store.prune(before=100.0) == 1  # the ended run; the one that goes on stays
    [row] = store.decisions(since=150.0)
    assert (row.id, row.seen, row.time, row.last_seen) == ("run", 4, 0.0, 180.0)
    store.close()
    store = SqliteStore(tmp_path / "tuner.db")  # a restart: the run goes on
    [again] = store.record_cycle(CycleRecord(240.0, [], [skipped("new-5", 240.0)], {}, 120.0))
    assert (again.id, again.seen) == ("run", 5)
    store.record_cycle(CycleRecord(300.0, [], [skipped("new-6", 300.0, COOLDOWN)], {}, 120.0))
    assert [(d.id, d.seen, d.last_seen) for d in store.decisions()] == [
        ("run", 5, 240.0),
        ("new-6", 1, None),
    ]
    store.close()


def _fields(d: Decision) -> dict[str, object]:
    return {name: getattr(d, name) for name in Decision.__dataclass_fields__}


def test_repeats_remember_only_the_previous_cycle() -> None:
    ref = FunctionRef("fake", "a")
    planned = Decision(
        id="1",
        time=0.0,
        ref=ref,
        rule="oom",
        action="more-memory",
        severity=Severity.CRITICAL,
        mode=Mode.APPLY,
    )
    repeats = Repeats()
    first = repeats.split([planned.with_verdict(Verdict.SKIP, hold=CAP)], 60.0, max_gap_s=120.0)
    assert [d.id for d in first.new] == ["1"] and first.seen_again == []
    repeats.recorded(first)
    again = repeats.split(
        [_with_id(planned, "2").with_verdict(Verdict.SKIP, hold=CAP)], 120.0, 120.0
    )
    assert again.new == [] and [(d.id, d.seen, d.last_seen) for d in again.seen_again] == [
        ("1", 2, 120.0)
    ]
    repeats.recorded(again)
    other = repeats.split([], 180.0, 120.0)  # a cycle without it
    repeats.recorded(other)
    assert len(repeats) == 0
    back = repeats.split(
        [_with_id(planned, "3").with_verdict(Verdict.SKIP, hold=CAP)], 240.0, 120.0
    )
    assert [d.id for d in back.new] == ["3"]


def _with_id(d: Decision, id_: str) -> Decision:
    return Decision(**{**_fields(d), "id": id_})


def test_a_version_2_store_migrates_to_counted_records(tmp_path: Path) -> None:
    path = tmp_path / "tuner.db"
    store = SqliteStore(path)
    store.close()
    db = sqlite3.connect(path)  # the same store as version 2 wrote it: no seen, no last_seen
    for statement in (
        "DROP INDEX decisions_last_seen",
        "DROP INDEX decisions_run",
        "DROP TABLE cycle",
        "ALTER TABLE decisions DROP COLUMN seen",
        "ALTER TABLE decisions DROP COLUMN last_seen",
        "ALTER TABLE decisions DROP COLUMN run",
        "ALTER TABLE decisions DROP COLUMN kind",
        "ALTER TABLE decisions DROP COLUMN hold",
    ):
        db.execute(statement)
    db.execute(
        "INSERT INTO decisions (id, time, function, rule, action, severity, mode, state) "
        "VALUES ('d', 5.0, 'fake:a', 'oom', 'more-memory', 'critical', 'apply', 'skipped')"
    )
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    store = SqliteStore(path)
    [d] = store.decisions(since=5.0)
    assert (d.id, d.seen, d.last_seen) == ("d", 1, None)
    assert store.decisions(since=5.1) == []
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    db.close()


@pytest.mark.parametrize("hold", [CAP, COOLDOWN])
def test_a_changed_change_is_a_new_record(hold: Hold) -> None:
    ref = FunctionRef("fake", "a")
    from tuner.domain.model import Change, Knob

    def planned(after: int, id_: str) -> Decision:
        return Decision(
            id=id_,
            time=0.0,
            ref=ref,
            rule="oom",
            action="more-memory",
            severity=Severity.CRITICAL,
            mode=Mode.APPLY,
            change=Change(Knob.MEMORY_MB, 128, after),
        ).with_verdict(Verdict.SKIP, hold=hold)

    repeats = Repeats()
    repeats.recorded(repeats.split([planned(256, "1")], 60.0, 120.0))
    split = repeats.split([planned(384, "2")], 120.0, 120.0)
    assert [d.id for d in split.new] == ["2"] and split.seen_again == []


def test_a_decision_planned_as_the_next_count_of_its_record_is_taken_as_it_is() -> None:
    ref = FunctionRef("fake", "a")
    planned = Decision(
        id="1",
        time=0.0,
        ref=ref,
        rule="oom",
        action="more-memory",
        severity=Severity.CRITICAL,
        mode=Mode.APPLY,
    ).with_verdict(Verdict.SKIP, hold=CAP)
    repeats = Repeats()
    repeats.recorded(repeats.split([planned], 60.0, 120.0))
    counted = planned.replaced(time=120.0, seen=2, last_seen=120.0)  # as HeldPlans makes it
    split = repeats.split([counted], 120.0, 120.0)
    assert split.seen_again[0] is counted and split.new == []
    repeats.recorded(split)
    # Said otherwise this time (another hold): a new record, never under the previous
    # record's id, which would overwrite it.
    other = counted.replaced(time=180.0, seen=3, last_seen=180.0, hold=COOLDOWN)
    split = repeats.split([other], 180.0, 120.0)
    [new] = split.new
    assert new.id != "1" and (new.seen, new.last_seen) == (1, None) and split.seen_again == []
    # After a gap the previous record is not known: the count starts again, under a new id.
    late = counted.replaced(time=600.0, seen=4, last_seen=600.0)
    [fresh] = repeats.split([late], 600.0, 120.0).new
    assert fresh.id != "1" and fresh.seen == 1


def test_a_version_3_store_learns_each_decisions_kind(tmp_path: Path) -> None:
    path = tmp_path / "tuner.db"
    SqliteStore(path).close()
    db = sqlite3.connect(path)  # as version 3 wrote it: no kind, no hold
    db.execute("ALTER TABLE decisions DROP COLUMN kind")
    db.execute("ALTER TABLE decisions DROP COLUMN hold")
    rows = [
        ("change", "oom", "more-memory", ""),
        ("undo", "oom", "rollback", "change"),
        ("ok", "oom", "resolved", ""),
        ("bad", "telemetry", "ignore-window", ""),
        ("pause", "manual", "pause", ""),
    ]
    for id_, rule, action, undoes in rows:
        db.execute(
            "INSERT INTO decisions (id, time, function, rule, action, severity, mode, state, "
            "undoes, reason) VALUES (?, 1.0, 'fake:a', ?, ?, 'info', 'apply', 'skipped', ?, "
            "'held back')",
            (id_, rule, action, undoes),
        )
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    store = SqliteStore(path)
    kinds = {d.id: d.kind.value for d in store.decisions()}
    assert kinds == {
        "change": "finding",
        "undo": "rollback",
        "ok": "resolved",
        "bad": "telemetry",
        "pause": "manual",
    }
    # no hold is guessed from a sentence: the sentence stays, as it was written
    assert {(d.hold, d.why) for d in store.decisions()} == {(None, "held back")}
    store.close()
