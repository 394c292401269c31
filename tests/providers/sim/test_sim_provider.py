"""The sim provider: deterministic traffic, OOMs exactly below the need, the optimum, the ledger."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tuner.daemon.config import load_config
from tuner.daemon.wiring import build as wire
from tuner.domain.errors import ConfigError, ConflictError, ProviderError
from tuner.domain.model import Change, Knob
from tuner.providers.sim import Settings, SimProvider, VirtualClock, build
from tuner.providers.sim.fleet import make_fleet
from tuner.providers.sim.workloads import Workload

WINDOW = 900.0


def run_windows(provider: SimProvider, clock: VirtualClock, windows: int) -> list[dict]:
    out = []
    for _ in range(windows):
        clock.advance(WINDOW)
        out.append(provider.observe(provider.targets(), clock.now() - WINDOW, clock.now()))
    return out


def test_the_same_seed_gives_the_same_fleet_and_traffic() -> None:
    a_clock, b_clock, c_clock = VirtualClock(), VirtualClock(), VirtualClock()
    a = build(Settings(functions=40, seed=3), clock=a_clock)
    b = build(Settings(functions=40, seed=3), clock=b_clock)
    c = build(Settings(functions=40, seed=4), clock=c_clock)
    assert a.workloads == b.workloads and a.workloads != c.workloads
    assert run_windows(a, a_clock, 3) == run_windows(b, b_clock, 3)


def test_a_window_observed_twice_is_counted_once() -> None:
    clock = VirtualClock()
    provider = build(Settings(functions=30, seed=1), clock=clock)
    clock.advance(WINDOW)
    first = provider.observe(provider.targets(), 0.0, WINDOW)
    failed = provider.ledger.failed
    again = provider.observe(provider.targets(), 0.0, WINDOW)
    assert again == first and provider.ledger.failed == failed


@pytest.mark.parametrize("kind", ["constant", "payload", "leak"])
def test_ooms_happen_below_the_need_and_never_at_it(kind: str) -> None:
    fleet = [w for w in make_fleet(200, seed=2) if w.kind == kind][:10]
    assert len(fleet) == 10
    clock = VirtualClock()
    at_need = SimProvider([replace(w, memory_mb=int(w.need_mb) + 1) for w in fleet], clock)
    ooms = [f.ooms or 0 for window in run_windows(at_need, clock, 24) for f in window.values()]
    assert sum(ooms) == 0
    clock = VirtualClock()
    short = SimProvider(
        [replace(w, memory_mb=max(128, int(w.need_mb * 0.5))) for w in fleet], clock
    )
    windows = run_windows(short, clock, 24)
    failing = {ref for window in windows for ref, f in window.items() if f.ooms}
    assert len(failing) >= 8  # nearly every function fails within six hours at half its need


def test_a_killed_invocation_leaves_its_trace_and_a_survivor_its_peak() -> None:
    w = next(w for w in make_fleet(200, seed=2) if w.kind == "constant" and w.chunk == 1.0)
    clock = VirtualClock()
    provider = SimProvider([replace(w, memory_mb=128, rate_per_s=5.0)], clock)
    (facts,) = run_windows(provider, clock, 1)[0].values()
    assert facts.ooms == facts.invocations and facts.peak_memory_mb is None
    traced = facts.extra["traced_peak_memory_mb"]
    assert traced == pytest.approx(w.need_mb)  # one buffer: the trace tells the whole need
    untraced = build(Settings(functions=1, tracing=False), clock=VirtualClock())
    assert untraced.evidence.tracing is False


def test_the_optimum_is_the_cheapest_size_without_oom_or_timeout() -> None:
    for w in make_fleet(100, seed=5):
        best = w.optimum_mb()
        assert best >= w.need_mb
        if w.max_duration_ms(best) < w.timeout_s * 1000:
            for other in (best + 64, best + 512, 3008):
                if other >= w.need_mb and w.max_duration_ms(other) < w.timeout_s * 1000:
                    assert w.cost_per_invocation(best) <= w.cost_per_invocation(other)


def test_cpu_bound_work_speeds_up_with_memory_up_to_one_vcpu() -> None:
    w: Workload = replace(make_fleet(1, seed=0)[0], cpu_ms=1000.0, io_ms=100.0)
    assert w.duration_ms(884.5) == pytest.approx(2100.0)
    assert w.duration_ms(1769) == w.duration_ms(3538) == pytest.approx(1100.0)


def test_apply_changes_memory_and_refuses_stale_revisions_and_unknown_knobs() -> None:
    provider = build(Settings(functions=3), clock=VirtualClock())
    target = provider.targets()[0]
    new = provider.apply(target, [Change(Knob.MEMORY_MB, target.config.memory_mb, 999)])
    assert new.memory_mb == 999 and provider.read(target.ref).memory_mb == 999
    with pytest.raises(ConflictError):
        provider.apply(target, [Change(Knob.MEMORY_MB, 999, 1024)])  # the old revision
    with pytest.raises(ProviderError):
        provider.apply(provider.targets()[0], [Change(Knob.BATCH_SIZE, None, 5)])


def test_the_ledger_counts_steps_to_the_fix_and_reversals() -> None:
    fleet = [
        replace(w, memory_mb=128, rate_per_s=5.0) for w in make_fleet(50, seed=2) if w.need_mb > 600
    ][:2]
    clock = VirtualClock()
    provider = SimProvider(fleet, clock)
    run_windows(provider, clock, 1)
    one, two = (t.ref for t in provider.targets())
    provider.set_memory(one, int(fleet[0].need_mb) + 10)  # fixed in one step
    provider.set_memory(two, 300)  # not enough
    provider.set_memory(two, int(fleet[1].need_mb) + 10)  # fixed in the second
    provider.set_memory(two, 200)  # back down: settling, not yet oscillating
    provider.set_memory(two, int(fleet[1].need_mb) + 10)  # and up again: oscillating
    score = provider.ledger.score()
    assert score.ooms == 2 and score.oom_fixed == 2 and score.oom_one_step_fraction == 0.5
    assert (
        score.redeploys_per_oom_mean == 1.5 and score.flapping_changes == 1 and score.changes == 5
    )
    assert score.failed_invocations > 0


def test_a_tuner_yaml_with_a_sim_provider_runs_a_cycle(tmp_path: Path) -> None:
    config = tmp_path / "tuner.yaml"
    config.write_text(
        f"store: {tmp_path / 'tuner.db'}\n"
        "providers:\n  - type: sim\n    functions: 25\n    seed: 4\n"
        "channels: {}\n"
    )
    clock = VirtualClock(3600.0)
    tuner = wire(load_config(config), clock=clock)
    try:
        report = tuner.daemon.run_cycle()
    finally:
        tuner.close()
    assert report.targets == 25 and not report.errors
    config.write_text("providers:\n  - type: sim\n    functions: 0\n")
    with pytest.raises(ConfigError) as raised:
        wire(load_config(config), clock=clock)
    assert "providers[0].functions" in str(raised.value.problems[0])


def test_a_probe_re_runs_a_killed_invocation_and_measures_its_whole_need() -> None:
    # Work allocated in tenths: the trace sees a fraction, the probe the whole need.
    w = next(w for w in make_fleet(200, seed=2) if w.kind == "constant")
    w = replace(w, chunk=0.1, work_mb=400.0, runtime_mb=60.0, memory_mb=128, rate_per_s=5.0)
    clock = VirtualClock()
    provider = SimProvider([w], clock)
    windows = run_windows(provider, clock, 2)
    for window in windows:
        (facts,) = window.values()
        assert facts.ooms
        assert facts.extra["probe_peak_memory_mb"] == pytest.approx(w.need_mb)
        assert facts.extra["traced_peak_memory_mb"] < 0.5 * w.need_mb
    score = provider.ledger.score()
    assert score.probe_invocations == 2 and score.synthetic_invocations == 0
    assert provider.ledger.probe_cost == pytest.approx(2 * w.cost_per_invocation(10_240))
    unprobed = build(Settings(functions=1, probe=False), clock=VirtualClock())
    assert unprobed.evidence.probe is False


def test_no_probe_without_an_oom() -> None:
    w = next(w for w in make_fleet(200, seed=2) if w.kind == "constant")
    clock = VirtualClock()
    provider = SimProvider([replace(w, memory_mb=int(w.need_mb) + 1, rate_per_s=5.0)], clock)
    for window in run_windows(provider, clock, 4):
        assert not any("probe_peak_memory_mb" in f.extra for f in window.values())
    assert provider.ledger.score().probe_invocations == 0


def test_the_lookback_reports_its_largest_payload_when_no_invocation_ever_survived() -> None:
    # Every invocation needs more than the 192 MB it has: there is no surviving peak, but
    # the 14 days of history saw payloads up to (nearly) the largest.
    w = next(w for w in make_fleet(200, seed=4) if w.kind == "payload" and w.family == "plain")
    w = replace(w, runtime_mb=60.0, work_mb=250.0, memory_mb=192, rate_per_s=0.1)
    clock = VirtualClock()
    provider = SimProvider([w], clock)
    (window,) = run_windows(provider, clock, 1)
    (facts,) = window.values()
    assert facts.ooms == facts.invocations > 0
    assert facts.extra["lookback_payload_kb_max"] == pytest.approx(w.payload_max_kb, rel=0.01)
    assert "lookback_peak_memory_mb" not in facts.extra  # no invocation survived to peak
    assert facts.extra["lookback_days"] == 14  # the history's two weeks, from the first day


def test_the_ledger_gives_each_function_its_cost_against_its_optimum() -> None:
    fleet = [replace(w, rate_per_s=5.0) for w in make_fleet(3, seed=2)]
    fleet = [
        replace(fleet[0], memory_mb=2 * fleet[0].optimum_mb()),
        replace(fleet[1], memory_mb=fleet[1].optimum_mb()),
        fleet[2],
    ]
    clock = VirtualClock()
    provider = SimProvider(fleet, clock)
    provider.ledger.settle_from = 0.0
    run_windows(provider, clock, 2)
    costs = provider.ledger.costs()
    assert sum(c for c, _ in costs) == pytest.approx(provider.ledger.cost)
    assert sum(o for _, o in costs) == pytest.approx(provider.ledger.optimum_cost)
    (doubled, doubled_best), (right, right_best) = costs[0], costs[1]
    assert doubled > 1.2 * doubled_best and right == pytest.approx(right_best)
