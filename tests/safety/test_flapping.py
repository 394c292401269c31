"""Oscillation: a flapping signal yields at most one change per cooldown for each knob."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from tests.fakes import FakeClock, FakeProvider
from tests.safety.harness import WINDOW_S, default_rules, healthy, make_daemon
from tuner.decisions.guard import GuardPolicy
from tuner.domain.model import FunctionConfig, FunctionRef, Knob, WindowFacts
from tuner.store.audit import SqliteStore

CYCLES = 720  # twelve hours of one-minute windows
UNCAPPED = GuardPolicy(
    max_changes_per_cycle=1000, max_changes_per_hour=1000, max_changes_per_function_per_day=1000
)


def _bad(ref: FunctionRef) -> WindowFacts:
    """Out of memory and close to the timeout at once."""
    return healthy(
        ref, ooms=5, errors=10, timeouts=5, peak_memory_mb=250.0, duration_p99_ms=29_000.0
    )


def _worse(ref: FunctionRef) -> WindowFacts:
    """Half the invocations fail: any change just made looks harmful."""
    return healthy(ref, errors=50)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_flapping_signal_is_damped_by_the_cooldown(seed: int) -> None:
    """Random bad, good and worse windows for 12 hours: each rule moves a knob once per cooldown."""
    rng = random.Random(seed)
    clock = FakeClock()
    provider = FakeProvider()
    config = FunctionConfig(memory_mb=256, timeout_s=30, batch_size=10_000, fan_out=1)
    refs = [provider.add(name, config) for name in ("a", "b")]
    store = SqliteStore(":memory:")
    daemon = make_daemon([provider], store, clock, guard_policy=UNCAPPED)
    for _ in range(CYCLES):
        for ref in refs:
            shape = rng.choices([_bad, healthy, _worse], weights=[5, 4, 1])[0]
            provider.windows[ref.name] = shape(ref)
        assert daemon.run_cycle().errors == []
        clock.advance(WINDOW_S)

    changes = [d for d in store.decisions(limit=100_000) if d.applied and d.change is not None]
    cooldowns = {r.name: r.rule.cooldown for r in default_rules().rules}
    times: dict[tuple[FunctionRef, Knob, str], list[float]] = defaultdict(list)
    for d in changes:
        if d.action != "rollback":
            assert d.change is not None
            times[(d.ref, d.change.knob, d.rule)].append(d.time)
    assert times, "the flapping input made tuner act at all"
    for (ref, knob, rule), stamps in times.items():
        cooldown = cooldowns[rule]
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        assert all(g >= cooldown for g in gaps), (ref, knob, rule, gaps)
        assert len(stamps) <= CYCLES * WINDOW_S / cooldown + 1
    rollbacks = [d for d in changes if d.action == "rollback"]
    assert len(rollbacks) <= len(changes) - len(rollbacks)
    per_function: dict[FunctionRef, int] = defaultdict(int)
    for d in changes:
        per_function[d.ref] += 1
    assert max(per_function.values()) <= CYCLES * WINDOW_S / cooldowns["oom"] * 2
