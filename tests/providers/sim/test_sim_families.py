"""The sim provider's families: CPU-bound work, bursty and daily traffic, long tails, cold starts, deploys."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from tuner.domain.times import DAY_S
from tuner.providers.sim import SimProvider, VirtualClock
from tuner.providers.sim.fleet import FAMILIES, make_fleet
from tuner.providers.sim.workloads import SLOT_S, Workload

FLEET = make_fleet(600, seed=3)


def family(name: str) -> list[Workload]:
    return [w for w in FLEET if w.family == name]


def week(provider: SimProvider, clock: VirtualClock, days: float = 7.0) -> list[dict]:
    out = []
    while clock.now() < days * DAY_S:
        clock.advance(SLOT_S)
        out.append(provider.observe(provider.targets(), clock.now() - SLOT_S, clock.now()))
    return out


def test_about_half_of_a_fleet_is_plain_and_every_family_is_drawn() -> None:
    counts = Counter(w.family for w in FLEET)
    assert set(counts) == set(FAMILIES)
    assert 0.4 < counts["plain"] / len(FLEET) < 0.6
    assert make_fleet(600, seed=3) == FLEET  # drawn from the seed alone


def test_a_cpu_bound_function_costs_least_above_the_smallest_size_that_fits() -> None:
    above = 0
    for w in family("cpu-bound"):
        best = w.optimum_mb()
        above += best > w.need_mb * 1.2
        sizes = range(max(128, int(w.need_mb) + 1), 10_240, 16)
        fitting = [m for m in sizes if w.max_duration_ms(m) < w.timeout_s * 1000]
        cheapest = min(fitting, key=w.cost_per_invocation)
        assert abs(best - cheapest) <= 16
        # more memory buys speed all the way: faster at the optimum than at the need
        assert w.duration_ms(best) < w.duration_ms(w.need_mb)
        assert w.cpu_time_ms(w.need_mb) > w.cpu_time_ms(best) > w.cpu_ms  # the runtime's share
    assert above >= 0.9 * len(family("cpu-bound"))


def test_bursty_traffic_comes_in_bursts_and_daily_traffic_sleeps_at_night() -> None:
    bursty = family("bursty")[0]
    rates = [bursty.rate_at(k * SLOT_S + 1) for k in range(7 * 96)]
    assert max(rates) / min(rates) > 20
    assert sum(rates) / len(rates) == pytest.approx(bursty.rate_per_s, rel=0.25)
    daily = family("daily")[0]
    rates = [daily.rate_at(k * 60.0) for k in range(1440)]
    assert min(rates) < 0.05 * daily.rate_per_s < daily.rate_per_s < max(rates)
    assert sum(rates) / len(rates) == pytest.approx(daily.rate_per_s, rel=0.02)


def test_a_long_tail_fails_only_its_rare_huge_requests_at_the_usual_need() -> None:
    w = family("long-tail")[0]
    usual = w.start_mb + w.mb_per_kb * w.payload_max_kb
    assert w.need_mb > usual * 1.2
    w = replace(w, rate_per_s=2.0, tail_share=1e-4)
    clock = VirtualClock()
    provider = SimProvider([replace(w, memory_mb=int(usual) + 1)], clock, history_days=0)
    windows = week(provider, clock, days=2)
    ooms = sum(f.ooms or 0 for window in windows for f in window.values())
    invocations = sum(f.invocations or 0 for window in windows for f in window.values())
    assert 0 < ooms < invocations * 5e-4  # the huge ones, a few in ten thousand
    clock = VirtualClock()
    covered = SimProvider([replace(w, memory_mb=int(w.need_mb) + 1)], clock, history_days=0)
    assert not any(f.ooms for window in week(covered, clock, 2) for f in window.values())


def test_a_heavy_init_times_cold_starts_out_below_the_optimum() -> None:
    cold = [w for w in family("cold-start") if w.optimum_mb() > w.need_mb + 1]
    assert cold, "some cold-start functions need more than their memory for their init"
    w = replace(cold[0], rate_per_s=0.2)
    clock = VirtualClock()
    at_need = SimProvider([replace(w, memory_mb=int(w.need_mb) + 1)], clock, history_days=0)
    timeouts = sum(f.timeouts or 0 for win in week(at_need, clock, 1) for f in win.values())
    assert timeouts > 0
    clock = VirtualClock()
    at_best = SimProvider([replace(w, memory_mb=w.optimum_mb())], clock, history_days=0)
    assert not any(f.timeouts for win in week(at_best, clock, 1) for f in win.values())


def test_a_deploy_changes_the_need_the_revision_and_the_history() -> None:
    more = next(
        w for w in family("deploy") if w.after_deploy and w.after_deploy.need_mb > w.need_mb * 1.4
    )
    w = replace(more, memory_mb=int(more.need_mb * 1.2), rate_per_s=1.0)
    clock = VirtualClock()
    provider = SimProvider([w], clock)
    before = provider.targets()[0].config.revision
    windows = week(provider, clock, days=w.deploy_at / DAY_S + 0.5)
    deployed = int(w.deploy_at // SLOT_S)
    assert not any(f.ooms for win in windows[:deployed] for f in win.values())
    after = [f for win in windows[deployed:] for f in win.values()]
    assert all(f.ooms for f in after)  # the new version needs more than the memory
    assert provider.targets()[0].config.revision != before
    assert after[0].extra["lookback_days"] == 1.0  # the new version's history only
    assert provider.ledger.score().ooms == 1
