"""Actions: each turns facts into a concrete change within limits, or says why it cannot."""

from __future__ import annotations

from typing import Any

import pytest

from tuner.domain.model import FunctionConfig, Limits
from tuner.engine.actions import (
    EnableCache,
    FanOut,
    LessConcurrency,
    LessMemory,
    LongerTimeout,
    MoreMemory,
    Notify,
    SmallerBatches,
)

AWS = Limits()
LOCAL = Limits(
    memory_min_mb=64,
    memory_max_mb=4096,
    timeout_max_s=300,
    fan_out_max=16,
    cpu_scales_with_memory=False,
)
STEP64 = Limits(memory_step_mb=64)


def cfg(**kw: Any) -> FunctionConfig:
    return FunctionConfig(**{"memory_mb": 128, "timeout_s": 3.0, **kw})


@pytest.mark.parametrize(
    ("action", "config", "limits", "facts", "after"),
    [
        # memory from the observed peak plus the margin, in one step
        (MoreMemory(), cfg(), AWS, {"peak_memory_mb": 100.0}, 256),  # 100*1.2=120 <= 128 -> x2
        (
            MoreMemory(),
            cfg(memory_mb=512),
            AWS,
            {"peak_memory_mb": 301.0},
            1024,
        ),  # fits: failures elsewhere
        (
            MoreMemory(margin=0.2),
            cfg(memory_mb=256),
            AWS,
            {"peak_memory_mb": 250.0},
            512,
        ),  # at the limit -> x2
        (
            MoreMemory(),
            cfg(memory_mb=128),
            AWS,
            {"peak_memory_mb": 128.0},
            256,
        ),  # killed at the limit
        (MoreMemory(), cfg(memory_mb=128), AWS, {}, 256),  # peak unknown: geometric
        (MoreMemory(growth=3.0), cfg(memory_mb=128), AWS, {}, 384),
        (MoreMemory(), cfg(memory_mb=8000), AWS, {}, 10240),  # clamped to the provider cap
        (MoreMemory(max_mb=1024), cfg(memory_mb=768), AWS, {}, 1024),  # clamped to the rule cap
        (MoreMemory(), cfg(memory_mb=100), STEP64, {}, 256),  # rounded up to the step
        # right-sizing down keeps a margin over the peak
        (LessMemory(), cfg(memory_mb=1024), AWS, {"peak_memory_mb": 200.0}, 260),
        (LessMemory(), cfg(memory_mb=1024), AWS, {"peak_memory_mb": 10.0}, 128),  # floor
        # timeout from the duration tail
        (
            LongerTimeout(),
            cfg(timeout_s=3.0),
            AWS,
            {"duration_max_ms": 2900.0, "timeouts": 4.0},
            5.0,
        ),
        (
            LongerTimeout(),
            cfg(timeout_s=10.0),
            AWS,
            {"duration_max_ms": 9500.0, "timeouts": 0.0},
            15.0,
        ),
        (
            LongerTimeout(max_s=20),
            cfg(timeout_s=15.0),
            AWS,
            {"duration_max_ms": 15000.0, "timeouts": 3.0},
            20.0,
        ),
        (
            LongerTimeout(),
            cfg(timeout_s=600.0),
            AWS,
            {"duration_max_ms": 600000.0, "timeouts": 1.0},
            900.0,
        ),
        # granularity
        (SmallerBatches(), cfg(batch_size=100), AWS, {}, 50),
        (
            SmallerBatches(),
            cfg(batch_size=100),
            AWS,
            {"timeout_ms": 3000.0, "extra": {"duration_per_record_ms": 30.0}},
            60,
        ),
        (SmallerBatches(), cfg(batch_size=3), AWS, {}, 1),
        (FanOut(), cfg(fan_out=1), LOCAL, {}, 2),
        (FanOut(), cfg(fan_out=1), LOCAL, {"extra": {"split_share": 0.4}}, 2),
        (FanOut(factor=4), cfg(fan_out=8), LOCAL, {}, 16),
        (LessConcurrency(), cfg(concurrency=10), AWS, {}, 5),
        (EnableCache(ttl_s=60), cfg(cache_ttl_s=0), AWS, {}, 60),
    ],
)
def test_plans(
    action: Any, config: FunctionConfig, limits: Limits, facts: dict[str, Any], after: float
) -> None:
    plan = action.plan(config, limits, facts)
    assert plan.applicable, plan.reason
    assert plan.change is not None
    assert plan.change.after == after
    assert plan.change.before == config.get(plan.change.knob)
    assert plan.summary


@pytest.mark.parametrize(
    ("action", "config", "limits", "facts", "reason"),
    [
        (MoreMemory(), cfg(memory_mb=10240), AWS, {}, "already at the cap"),
        (MoreMemory(only_if_cpu_scales=True), cfg(), LOCAL, {}, "buys no CPU"),
        (LessMemory(), cfg(memory_mb=1024), AWS, {}, "never lowered on missing data"),
        (
            LessMemory(),
            cfg(memory_mb=1024),
            AWS,
            {"peak_memory_mb": None},
            "never lowered on missing data",
        ),
        (LessMemory(), cfg(memory_mb=256), AWS, {"peak_memory_mb": 190.0}, "saving below"),
        (
            LongerTimeout(),
            cfg(timeout_s=None),
            AWS,
            {"duration_max_ms": 100.0},
            "no timeout setting",
        ),
        (LongerTimeout(), cfg(timeout_s=900.0), AWS, {"timeouts": 1.0}, "at the cap"),
        (LongerTimeout(), cfg(timeout_s=3.0), AWS, {}, "no duration measured"),
        (
            LongerTimeout(),
            cfg(timeout_s=10.0),
            AWS,
            {"duration_max_ms": 2000.0, "timeouts": 0.0},
            "fits",
        ),
        (SmallerBatches(), cfg(), AWS, {}, "no batch size"),
        (SmallerBatches(), cfg(batch_size=1), AWS, {}, "already at the minimum"),
        (FanOut(), cfg(), LOCAL, {}, "does not support fan-out"),
        (FanOut(), cfg(fan_out=16), LOCAL, {}, "at the cap"),
        # the failing events are dicts: the host splits only lists, the change could not help
        (FanOut(), cfg(fan_out=1), LOCAL, {"extra": {"split_share": 0.0}}, "do not split"),
        (LessConcurrency(), cfg(concurrency=1), AWS, {}, "already at the minimum"),
        (EnableCache(), cfg(), AWS, {}, "no cache setting"),
        (EnableCache(), cfg(cache_ttl_s=30), AWS, {}, "already on"),
    ],
)
def test_cannot_apply(
    action: Any, config: FunctionConfig, limits: Limits, facts: dict[str, Any], reason: str
) -> None:
    plan = action.plan(config, limits, facts)
    assert not plan.applicable
    assert plan.change is None
    assert reason in plan.reason


def test_notify_never_changes() -> None:
    plan = Notify().plan(cfg(), AWS, {"ooms": 100.0})
    assert plan.applicable and plan.change is None
