"""The bundled timeout rule tries what can work, in order, and says why when nothing can."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tuner.decisions.planning import plan_finding
from tuner.domain.model import (
    Finding,
    FunctionConfig,
    FunctionRef,
    Knob,
    Limits,
    Mode,
    Severity,
    Target,
)
from tuner.engine import load_rules

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = load_rules([ROOT / "rules" / "default.yaml"]).by_name("timeout")
LOCAL = Limits(
    memory_min_mb=64,
    memory_max_mb=4096,
    timeout_max_s=300,
    fan_out_max=16,
    cpu_scales_with_memory=False,
)
LAMBDA = Limits()


def facts(split_share: float | None = None) -> dict[str, Any]:
    """A window in which a third of the invocations hit the 10 s timeout."""
    extra = {} if split_share is None else {"split_share": split_share}
    return {
        "invocations": 30.0,
        "timeouts": 10.0,
        "timeout_rate": 1 / 3,
        "timeout_ms": 10_000.0,
        "duration_max_ms": 10_000.0,
        "duration_timeout_ratio": 1.0,
        "memory_mb": 256.0,
        "extra": extra,
    }


def plan(config: FunctionConfig, limits: Limits, window: dict[str, Any]) -> list[Any]:
    assert TIMEOUT is not None
    target = Target(FunctionRef("local", "f"), config, limits=limits)
    finding = Finding(target.ref, "timeout", Severity.CRITICAL, window, 0.0)
    return plan_finding(TIMEOUT, finding, target, Mode.APPLY, 0.0)


@pytest.mark.parametrize(
    ("config", "limits", "split", "knob", "after"),
    [
        # a batch: smaller batches first
        (FunctionConfig(256, 10.0, batch_size=100, fan_out=1), LOCAL, 1.0, Knob.BATCH_SIZE, 50),
        # no batch: a longer timeout, before a fan-out even where events split
        (FunctionConfig(256, 10.0, fan_out=1), LOCAL, 1.0, Knob.TIMEOUT_S, 15),
        # dict events that do not split: a longer timeout
        (FunctionConfig(256, 10.0, fan_out=1), LOCAL, 0.0, Knob.TIMEOUT_S, 15),
        # at the local host's limit, where the events split: more parts
        (FunctionConfig(256, 300.0, fan_out=1), LOCAL, 1.0, Knob.FAN_OUT, 2),
        # at Lambda's limit, where memory buys CPU: more memory
        (FunctionConfig(256, 900.0), LAMBDA, None, Knob.MEMORY_MB, 512),
    ],
)
def test_the_first_remedy_that_can_act(
    config: FunctionConfig, limits: Limits, split: float | None, knob: Knob, after: float
) -> None:
    (decision,) = plan(config, limits, facts(split))
    assert decision.change is not None
    assert (decision.change.knob, decision.change.after) == (knob, after)


def test_when_no_remedy_can_act_the_owners_are_told_why() -> None:
    # Dict events at the local host's 300 s limit: nothing tuner can change would help.
    config = FunctionConfig(256, 300.0, fan_out=1, handover_s=0.0)
    (decision,) = plan(config, LOCAL, facts(split_share=0.0))
    assert decision.change is None and decision.action == "notify"
    assert decision.summary == (
        "Invocations reach the timeout: no automatic fix applies ("
        "smaller-batches: the function has no batch size; "
        "longer-timeout: timeout is already at the cap (300 s); "
        "more-memory: more memory buys no CPU on this provider; "
        "fan-out: its events do not split: fan-out divides a list event over parts, and the"
        " failing events are not lists; "
        "handover: its code does not use tuner_handler's handover)"
    )
    assert "its events are not lists" in decision.advice
    assert "adopt tuner_handler's handover" in decision.advice  # the few lines that adopt it
    assert "`@handover` above `def handler(event, context):`" in decision.advice


@pytest.mark.parametrize(
    ("handover_s", "timeouts", "holds"),
    [
        (0.0, 0.0, True),  # the tail at 95% of the timeout: about to time out
        (None, 0.0, True),
        (0.2, 0.0, False),  # a chain's links end near the timeout by design
        (0.2, 1.0, True),  # but a link that times out still counts
    ],
)
def test_links_of_a_chain_near_the_timeout_are_not_a_finding(
    handover_s: float | None, timeouts: float, holds: bool
) -> None:
    assert TIMEOUT is not None
    window = {
        **facts(),
        "timeouts": timeouts,
        "timeout_rate": timeouts / 30,
        "duration_timeout_ratio": 0.95,
        "handover_s": handover_s,
    }
    assert TIMEOUT.condition.evaluate(window) is holds
