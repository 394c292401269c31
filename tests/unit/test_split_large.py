"""Splitting only the large payloads: where it acts, the size it sets, and what the sim makes of it.

The local host runs it for real (tests/providers/local/test_local_split_large.py).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from tuner.domain.model import Change, FunctionConfig, Knob, Limits
from tuner.engine.actions import SplitLarge
from tuner.providers.sim.fleet import make_fleet
from tuner.providers.sim.scoring import Ledger
from tuner.providers.sim.slots import fitting, huge_fitting, slot_ooms
from tuner.providers.sim.windows import Outcome

LOCAL = Limits(memory_min_mb=64, memory_max_mb=4096, fan_out_max=16)


def config(**kw: Any) -> FunctionConfig:
    return FunctionConfig(**{"memory_mb": 512, "timeout_s": 30.0, "split_above_kb": 0, **kw})


def facts(ooms: float = 1.0, invocations: float = 400.0, **extra: float) -> dict[str, Any]:
    """One of 400 invocations killed at 512 MB; its 900 KB payload peaked at 960 MB re-run."""
    return {
        "ooms": ooms,
        "invocations": invocations,
        "memory_mb": 512.0,
        "extra": {
            "supports_split": 1.0,
            "probe_peak_memory_mb": 960.0,
            "probe_memory_mb": 4096.0,
            "probe_payload_kb": 900.0,
            "runtime_memory_mb": 60.0,
            **extra,
        },
    }


def test_the_size_is_the_payload_whose_need_fits_the_memory() -> None:
    plan = SplitLarge().plan(config(), LOCAL, facts())
    # on the line from 60 MB (0 KB) through 960 MB (900 KB): 900 x (512 / 1.1 - 60) / 900
    assert plan.change == Change(Knob.SPLIT_ABOVE_KB, 0, 405), plan.reason
    assert plan.summary.startswith("split payloads over 405 KB into parts of at most that size")
    assert "900 KB peaked at 960 MB, 60 MB of it fixed" in plan.summary
    # nothing known fixed: the line runs through 0 (and parts may need more than it says)
    bare = facts()
    del bare["extra"]["runtime_memory_mb"]
    assert SplitLarge().plan(config(), LOCAL, bare).change == Change(Knob.SPLIT_ABOVE_KB, 0, 436)
    # a growth model's fixed part is the need at an empty payload: 200 MB of it here
    modelled = facts(memory_base_mb=200.0, memory_mb_per_payload_kb=0.8, payload_kb_max=900.0)
    plan = SplitLarge().plan(config(), LOCAL, modelled)
    assert plan.change == Change(Knob.SPLIT_ABOVE_KB, 0, 314), plan.reason  # 900 x 265 / 760
    # a split that is too coarse for memory lowered since is made finer
    finer = SplitLarge().plan(config(split_above_kb=600), LOCAL, facts())
    assert finer.change == Change(Knob.SPLIT_ABOVE_KB, 600, 405)


@pytest.mark.parametrize(
    ("cfg", "window", "reason"),
    [
        (config(split_above_kb=None), facts(), "cannot be split on this provider"),
        (config(), {**facts(), "extra": {"probe_payload_kb": 900.0}}, "does not use"),
        (config(), facts(ooms=0.0), "no invocation ran out of memory"),
        (config(), facts(ooms=12.0), "12 of 400 ran out of memory: not rare"),
        (config(), facts(probe_payload_kb=0.0), "no probe measured"),
        (config(), facts(probe_peak_memory_mb=600.0), "needed 600 MB: more memory is simpler"),
        (config(), facts(probe_peak_memory_mb=4090.0), "no probe measured"),  # at its limit
        (config(), facts(runtime_memory_mb=480.0), "leaves no room for a part"),
        (config(), facts(payload_kb_max=9000.0), "9000 KB payload would need over 16 parts"),
        (config(split_above_kb=300), facts(), "over 300 KB are split already"),
    ],
)
def test_it_says_why_not(cfg: FunctionConfig, window: dict[str, Any], reason: str) -> None:
    plan = SplitLarge().plan(cfg, LOCAL, window)
    assert plan.change is None and reason in plan.reason


def long_tail() -> Any:
    """A long-tail function of the simulated fleet whose code splits."""
    fleet = make_fleet(300, 7)
    return next(w for w in fleet if w.family == "long-tail" and w.splits and w.tail_share)


def test_the_sim_runs_a_split_payload_as_parts_that_fit() -> None:
    w = long_tail()
    memory = math.ceil(w.start_mb + w.mb_per_kb * w.payload_max_kb * 1.05)  # the usual fit
    assert fitting(w, memory) == 1.0 and huge_fitting(w, memory) == 0.0
    u = [0.5] * 16
    n = 100_000
    ooms, huge = slot_ooms(w, memory, n, u)
    assert huge > 0 and ooms == huge  # every huge payload fails, no usual one
    part_kb = (memory - w.start_mb) / w.mb_per_kb / 1.1
    split = w.split_at(part_kb)
    assert slot_ooms(split, memory, n, u) == (0, huge)
    assert split.need_mb < memory < w.need_mb == split.whole_need_mb
    assert split.optimum_mb() == w.optimum_mb()  # the optimum is memory alone
    parts = split.split_parts(n - huge, huge)
    assert parts >= huge * math.ceil(w.tail_kb / part_kb)  # each part is an invocation
    assert w.split_parts(n - huge, huge) == 0.0
    assert split.split_at(0).split_kb == math.inf


def test_a_split_ends_an_episode_in_one_step_without_moving_memory() -> None:
    w = long_tail()
    memory = math.ceil(w.start_mb + w.mb_per_kb * w.payload_max_kb * 1.05)
    ledger = Ledger([replace(w, memory_mb=memory)], settle_from=math.inf)
    killed = Outcome(400, 1, 0, 0.0, None, None, first_oom_at=100.0)  # a huge payload
    ledger.window(0, memory, killed, end=900.0, version=w)
    assert ledger.episodes() == [(0, 0, False)]
    split = w.split_at((memory - w.start_mb) / w.mb_per_kb / 1.1)
    ledger.split(0, memory, split.need_mb, at=900.0)
    assert ledger.episodes() == [(0, 1, True)]
    assert ledger.flapping == 0
