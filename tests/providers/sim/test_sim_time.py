"""The sim provider over time: windows of any length count each invocation once, news of an
OOM comes when it happens, sizes are tried on a share of the traffic, and the ledger scores
failures in what each successful invocation cost."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tuner.domain.model import Change, Knob, Lasting
from tuner.providers.sim import SimProvider, VirtualClock
from tuner.providers.sim.fleet import make_fleet
from tuner.providers.sim.windows import RETRIES
from tuner.providers.sim.workloads import SLOT_S, Workload

PLAIN = [w for w in make_fleet(200, seed=2) if w.family == "plain"]


def constant(**changes: object) -> Workload:
    w = next(w for w in PLAIN if w.kind == "constant" and w.chunk == 1.0)
    return replace(w, **{"rate_per_s": 2.0, **changes})  # type: ignore[arg-type]


def at(clock: VirtualClock, t: float) -> None:
    clock.advance(t - clock.now())


def test_a_slot_observed_in_parts_holds_the_invocations_and_ooms_of_the_whole() -> None:
    fleet = [
        replace(w, memory_mb=max(128, int(w.need_mb * 0.6)), rate_per_s=1.0) for w in PLAIN[:20]
    ]
    whole_clock, parts_clock = VirtualClock(), VirtualClock()
    whole = SimProvider(fleet, whole_clock)
    parted = SimProvider(fleet, parts_clock)
    at(whole_clock, SLOT_S)
    one = whole.observe(whole.targets(), 0.0, SLOT_S)
    totals = {ref: [0, 0] for ref in one}
    for a, b in ((0.0, 100.0), (100.0, 460.0), (460.0, SLOT_S)):
        at(parts_clock, b)
        for ref, f in parted.observe(parted.targets(), a, b).items():
            totals[ref][0] += f.invocations or 0
            totals[ref][1] += f.ooms or 0
    assert {ref: [f.invocations, f.ooms] for ref, f in one.items()} == totals


def test_news_of_an_oom_comes_when_it_happens_and_the_window_to_then_shows_it() -> None:
    w = constant(memory_mb=128, rate_per_s=0.05)  # every invocation fails, one in 20 s
    clock = VirtualClock()
    provider = SimProvider([w], clock)
    news = provider.first_news(0.0, SLOT_S)
    ref = provider.targets()[0].ref
    first = news[ref]
    assert 0.0 < first < SLOT_S
    at(clock, first / 2)
    assert provider.urgent_since(0.0) == {}  # nothing heard of before it happens
    at(clock, first + 1.0)
    assert provider.urgent_since(0.0) == {ref: first}
    window = provider.observe(provider.targets(), 0.0, first + 1.0)[ref]
    assert window.ooms and window.ooms >= 1
    fixed = SimProvider([replace(w, memory_mb=int(w.need_mb) + 1)], VirtualClock())
    assert fixed.first_news(0.0, SLOT_S) == {}


def test_a_change_in_a_slot_splits_it_and_later_windows_show_only_the_new_size() -> None:
    w = constant(memory_mb=128)
    clock = VirtualClock()
    provider = SimProvider([w], clock)
    target = provider.targets()[0]
    at(clock, 300.0)
    before = provider.observe([target], 0.0, 300.0)[target.ref]
    assert before.ooms == before.invocations
    provider.apply(target, [Change(Knob.MEMORY_MB, 128, int(w.need_mb) + 1)])
    at(clock, SLOT_S)
    window = provider.observe(provider.targets(), 0.0, SLOT_S)[target.ref]
    assert window.start == 300.0 and not window.ooms  # only what ran at the new size
    score = provider.ledger.score()
    assert score.failed_invocations == before.ooms  # the slot's first part, at 128 MB
    assert score.ooms == 1 and score.oom_one_step_fraction == 1.0
    assert score.minutes_to_fix_mean == pytest.approx(
        5.0, abs=0.1
    )  # first OOM at once, fix at 300 s


def test_a_size_tried_on_a_share_of_the_traffic_is_measured_and_ends_by_itself() -> None:
    w = constant(memory_mb=2000, rate_per_s=1.0, cpu_ms=1000.0, io_ms=20.0)
    clock = VirtualClock()
    provider = SimProvider([w], clock, trial_share=0.1)
    target = provider.targets()[0]
    at(clock, SLOT_S)
    first = provider.observe([target], 0.0, SLOT_S)[target.ref]
    assert first.extra["cheapest_measured_memory_mb"] == 2000
    assert "measured_above_mb" not in first.extra
    trial = Change(Knob.MEMORY_TRIAL_MB, 0, 3000, Lasting(invocations=50))
    live = provider.apply(target, [trial])
    assert live.memory_trial_mb == 3000 and live.memory_mb == 2000
    assert provider.ledger.score().changes == 0  # the function's memory did not change
    at(clock, 2 * SLOT_S)
    window = provider.observe(provider.targets(), SLOT_S, 2 * SLOT_S)[target.ref]
    assert window.invocations and window.invocations < 0.95 * (first.invocations or 0)
    assert window.extra["measured_above_mb"] == 3000  # dearer: memory buys no more CPU
    assert provider.read(target.ref).memory_trial_mb == 0  # 90 ran there: it ended


def test_a_size_that_failed_is_not_measured() -> None:
    w = constant(memory_mb=1000)
    w = replace(w, work_mb=w.work_mb + 400.0)  # needs more than 1000 MB now and then? always
    clock = VirtualClock()
    provider = SimProvider([w], clock)
    at(clock, SLOT_S)
    window = provider.observe(provider.targets(), 0.0, SLOT_S)[provider.targets()[0].ref]
    if window.ooms:
        assert "cheapest_measured_memory_mb" not in window.extra


def test_cost_per_success_counts_failed_invocations_their_retries_and_timeouts() -> None:
    fits = constant()
    short = constant(memory_mb=128)
    slow = constant(memory_mb=int(fits.need_mb) + 1, timeout_s=1.0, io_ms=900.0, cpu_ms=0.0)
    scores = {}
    for name, w in {
        "fits": replace(fits, memory_mb=int(fits.need_mb) + 1),
        "short": short,
        "slow": slow,
    }.items():
        clock = VirtualClock()
        provider = SimProvider([w], clock)
        provider.ledger.settle_from = 0.0
        at(clock, 4 * SLOT_S)
        provider.observe(provider.targets(), 0.0, 4 * SLOT_S)
        scores[name] = provider.ledger
    ok = scores["fits"]
    assert ok.successes == ok.invocations and ok.billed == pytest.approx(ok.cost)
    dead = scores["short"]
    assert dead.successes == 0  # the same payload fails when tried again
    assert dead.billed == pytest.approx(dead.cost * (1 + RETRIES), rel=0.01)
    late = scores["slow"]
    assert late.failed and late.successes < late.invocations
    assert late.billed > late.cost  # a timed-out invocation is billed up to its timeout
    assert late.score().cost_per_success_to_optimum > 1.0
