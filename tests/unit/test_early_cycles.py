"""Early cycles: a function that begins to fail is fixed before its window ends, within bounds."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.fakes import FakeClock, FakeProvider
from tuner.daemon.loop import Daemon, DaemonSettings
from tuner.daemon.reports import CycleReport
from tuner.daemon.scheduling import Early, EarlyCycles, run_forever
from tuner.daemon.simulating import simulate
from tuner.domain.lifecycle import State
from tuner.domain.model import FunctionConfig, FunctionRef, WindowFacts
from tuner.engine import load_rules
from tuner.store.audit import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
A, B, C = (FunctionRef("fake", n) for n in "abc")


def test_an_early_cycle_comes_at_the_news_but_not_within_the_gap_of_another() -> None:
    early = EarlyCycles(min_gap_s=60.0)
    early.ran(1000.0)  # a regular cycle; the next one at 1900
    assert early.due({}, 1900.0) is None
    assert early.due({A: 1010.0}, 1900.0) == Early(1060.0, frozenset({A}))  # the gap first
    assert early.due({A: 1500.0, B: 1200.0}, 1900.0) == Early(1200.0, frozenset({B}))
    assert early.due({A: 1850.0}, 1900.0) is None  # the regular cycle will see it
    early.ran(1200.0, Early(1200.0, frozenset({B})))
    assert early.due({B: 1300.0}, 1900.0) is None  # B brought its early cycle already
    assert early.due({A: 1210.0, B: 1300.0}, 1900.0) == Early(1260.0, frozenset({A}))
    early.ran(1900.0)  # a regular cycle: B may bring one again
    assert early.due({B: 1950.0}, 2800.0) == Early(1960.0, frozenset({B}))


def world() -> tuple[Daemon, FakeProvider, FakeClock, SqliteStore]:
    provider = FakeProvider()
    for name in "abc":
        provider.add(name, FunctionConfig(memory_mb=1024, timeout_s=3.0))
        provider.windows[name] = WindowFacts(
            A, 0, 0, invocations=100, errors=0, ooms=0, timeouts=0, peak_memory_mb=1000.0
        )
    clock = FakeClock()
    store = SqliteStore(":memory:")
    daemon = Daemon(
        providers=[provider],
        rules=load_rules([ROOT / "rules" / "default.yaml"]),
        store=store,
        clock=clock,
        settings=DaemonSettings(window_s=900.0),
    )
    return daemon, provider, clock, store


def test_an_early_cycle_looks_at_its_functions_alone_since_the_last_regular_cycle() -> None:
    daemon, provider, clock, store = world()
    seen: list[tuple[set[str], float, float]] = []
    observe = provider.observe

    def recording(targets, start, end):  # type: ignore[no-untyped-def]
        seen.append(({t.ref.name for t in targets}, start, end))
        return observe(targets, start, end)

    provider.observe = recording  # type: ignore[method-assign]
    regular = clock.now()
    daemon.run_cycle()
    c_memory = provider.configs["c"].memory_mb
    clock.advance(120.0)
    provider.windows["b"] = WindowFacts(
        B, 0, 0, invocations=10, errors=10, ooms=10, timeouts=0, peak_memory_mb=None
    )
    report = daemon.run_cycle(only=frozenset({B}))
    assert report.early and report.targets == 1
    assert seen[-1] == ({"b"}, regular, regular + 120.0)
    applied = [d for d in report.decisions if d.state is State.APPLIED]
    assert [(d.ref, d.rule) for d in applied] == [(B, "oom")]
    assert provider.configs["b"].memory_mb == 2048 and provider.configs["c"].memory_mb == c_memory
    clock.advance(780.0)
    daemon.run_cycle()
    assert seen[-1] == ({"a", "b", "c"}, regular, regular + 900.0)  # the regular window
    store.close()


def test_functions_left_out_of_an_early_cycle_keep_their_streaks_and_their_verdicts() -> None:
    daemon, provider, clock, store = world()
    provider.windows["a"] = WindowFacts(
        A, 0, 0, invocations=10, errors=10, ooms=10, timeouts=0, peak_memory_mb=None
    )
    daemon.run_cycle()  # a is raised, and waits for its verdict
    pending = {d.ref for d in store.pending_verification()}
    streaks = {k: dict(v) for k, v in daemon.streaks.counts.items() if k != B.key}
    clock.advance(60.0)
    provider.windows["b"] = WindowFacts(
        B, 0, 0, invocations=10, errors=10, ooms=10, timeouts=0, peak_memory_mb=None
    )
    daemon.run_cycle(only=frozenset({B}))
    assert A in pending and A in {d.ref for d in store.pending_verification()}
    assert all(d.judged_windows == 0 for d in store.pending_verification() if d.ref == A)
    assert {k: v for k, v in daemon.streaks.counts.items() if k != B.key} == streaks
    store.close()


@dataclass
class Hearing(FakeProvider):
    """A fake provider that hears of OOMs as they happen."""

    news: dict[FunctionRef, float] = field(default_factory=dict)

    def urgent_since(self, since: float) -> Mapping[FunctionRef, float]:
        return {ref: t for ref, t in self.news.items() if t >= since}


def test_a_running_daemon_runs_a_cycle_for_the_news_without_waiting_for_the_interval() -> None:
    provider = Hearing()
    for name in "abc":
        provider.add(name, FunctionConfig(memory_mb=1024, timeout_s=3.0))
        provider.windows[name] = WindowFacts(
            A, 0, 0, invocations=100, errors=0, ooms=0, timeouts=0, peak_memory_mb=1000.0
        )
    daemon = Daemon(
        providers=[provider],
        rules=load_rules([ROOT / "rules" / "default.yaml"]),
        store=SqliteStore(":memory:"),
        settings=DaemonSettings(window_s=60.0),
    )
    reports: list[CycleReport] = []
    stop = threading.Event()
    early = EarlyCycles(min_gap_s=0.2, poll_s=0.02)
    runner = threading.Thread(
        target=run_forever,
        args=(daemon, 60.0),
        kwargs={"on_cycle": reports.append, "stop": stop, "early": early},
    )
    runner.start()
    try:
        while not reports:
            time.sleep(0.01)
        provider.windows["c"] = WindowFacts(
            C, 0, 0, invocations=10, errors=10, ooms=10, timeouts=0, peak_memory_mb=None
        )
        provider.news[C] = time.time()
        deadline = time.monotonic() + 20.0
        while len(reports) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        runner.join()
    regular, fix = reports[0], reports[1]
    assert not regular.early and fix.early and fix.targets == 1
    assert [d.ref for d in fix.decisions if d.state is State.APPLIED] == [C]
    assert math.isfinite(early.last) and C in early.told


def test_early_cycles_fix_a_simulated_fleet_sooner_with_fewer_failures() -> None:
    rules = [ROOT / "rules" / "default.yaml"]
    late = simulate(rules, functions=40, days=0.25, seed=3, early_gap_s=None).score
    soon = simulate(rules, functions=40, days=0.25, seed=3, early_gap_s=60.0)
    assert soon.early_cycles > 0
    assert soon.score.minutes_to_fix_mean < late.minutes_to_fix_mean / 2
    assert soon.score.failed_before_fix < late.failed_before_fix
