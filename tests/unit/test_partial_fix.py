"""A partial OOM fix is a step in the right direction: keep it, and take the next step.

A more-memory change after which invocations still run out of memory is neither
"improved" nor a regression: it stays (``partial``: memory below it is known to fail),
and the OOM rule fires again once its cooldown has passed, sized from the new evidence.
Run on the simulated fleet with the bundled rules (OOM cooldown 10 minutes, one-minute
cycles).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tuner.daemon.loop import Daemon, DaemonSettings
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.engine import load_rules
from tuner.providers.sim import SimProvider, VirtualClock
from tuner.providers.sim.fleet import make_fleet
from tuner.providers.sim.memory import Evidence
from tuner.store.audit import SqliteStore

RULES = Path(__file__).resolve().parents[2] / "rules" / "default.yaml"
WINDOW = 60.0


def run(tmp_path: Path, cycles: int, evidence: Evidence, **workload: object) -> list[Decision]:
    base = next(w for w in make_fleet(50, seed=2) if w.kind == workload.get("kind", "constant"))
    w = replace(base, rate_per_s=3.0, timeout_s=30.0, cpu_ms=0.0, io_ms=50.0, **workload)
    clock = VirtualClock(86_400.0 * w.phase)  # start at the function's busiest hour
    provider = SimProvider([w], clock, evidence=evidence)
    store = SqliteStore(tmp_path / "tuner.db")
    daemon = Daemon(
        providers=[provider],
        rules=load_rules([RULES]),
        store=store,
        clock=clock,
        settings=DaemonSettings(window_s=WINDOW),
    )
    for _ in range(cycles):
        clock.advance(WINDOW)
        daemon.run_cycle()
    decisions = [d for d in store.decisions() if d.change is not None]
    store.close()
    return decisions


def memory_changes(decisions: list[Decision]) -> list[Decision]:
    return [d for d in decisions if d.rule == "oom" and d.applied]


def test_a_raise_that_still_fails_is_kept_and_followed_by_the_next(
    tmp_path: Path,
) -> None:
    # Work allocated in two halves: the first trace shows only half of it (260 MB),
    # the second, at the new size, the rest (460 MB).  No probe measures the whole.
    decisions = run(
        tmp_path,
        14,
        Evidence(probe=False),
        kind="constant",
        runtime_mb=60.0,
        work_mb=400.0,
        chunk=0.5,
        memory_mb=128,
    )
    assert not [d for d in decisions if d.action == "rollback"]
    first, second = memory_changes(decisions)[:2]
    assert first.change is not None and second.change is not None
    assert second.change.before == first.change.after  # kept, not rolled back
    assert second.change.after >= 460  # sized from the trace at the new size
    assert second.time - first.time >= 600  # the next step waits out the 10-minute cooldown
    assert first.state is State.PARTIAL


def test_a_probe_fixes_work_allocated_in_halves_in_one_step(tmp_path: Path) -> None:
    decisions = run(
        tmp_path,
        14,
        Evidence(),
        kind="constant",
        runtime_mb=60.0,
        work_mb=400.0,
        chunk=0.5,
        memory_mb=128,
    )
    (change,) = memory_changes(decisions)
    assert change.change is not None and change.change.after >= 460
    assert "peaked at 460 MB" in change.summary


def test_a_raise_that_fails_less_is_not_called_improved(tmp_path: Path) -> None:
    # No evidence but the OOMs: memory doubles, fewer invocations fail, some still do.
    decisions = run(
        tmp_path,
        14,
        Evidence(tracing=False, payloads=False, probe=False),
        kind="payload",
        memory_mb=128,
        skew=1.0,
        runtime_mb=60.0,
        work_mb=10.0,
        mb_per_kb=1.0,
        payload_max_kb=500.0,
    )
    changes = memory_changes(decisions)
    assert len(changes) >= 2 and not [d for d in decisions if d.action == "rollback"]
    assert changes[0].state is State.PARTIAL
    assert [d.change.after for d in changes if d.change] == sorted(
        d.change.after for d in changes if d.change
    )
