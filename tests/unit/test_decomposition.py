"""Handover and split as decisions: planned where the code supports them, sized, judged, explained.

Table-driven over facts as the providers give them; the local host and the demo run the
same actions for real (tests/providers/local/test_local_remedies.py, tests/e2e).
"""

from __future__ import annotations

from typing import Any

import pytest

from tuner.decisions.adopting import adoption_advice
from tuner.decisions.verifying import VerifyPolicy, judge
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.model import Change, FunctionConfig, FunctionRef, Knob, Limits, Mode, Severity
from tuner.engine.actions import Handover, Split
from tuner.engine.conditions import compile_condition
from tuner.engine.reference import FACT_TYPES

LOCAL = Limits(memory_min_mb=64, memory_max_mb=128, timeout_max_s=2.0, fan_out_max=16)


def job(**kw: Any) -> FunctionConfig:
    return FunctionConfig(
        **{"memory_mb": 128, "timeout_s": 2.0, "fan_out": 1, "handover_s": 0.0, **kw}
    )


SUPPORTS_HANDOVER = {"timeouts": 5.0, "extra": {"supports_handover": 1.0}}


@pytest.mark.parametrize(
    ("action", "config", "facts", "after", "reason"),
    [
        (Handover(), job(), SUPPORTS_HANDOVER, 0.2, ""),  # 10% of 2 s
        (Handover(margin=0.2), job(timeout_s=10.0), SUPPORTS_HANDOVER, 2.0, ""),
        (Handover(min_s=0.5), job(), SUPPORTS_HANDOVER, 0.5, ""),
        (Handover(), job(), {"timeouts": 5.0, "extra": {}}, None, "does not use tuner_handler"),
        (Handover(), job(handover_s=None), SUPPORTS_HANDOVER, None, "no handover setting"),
        (Handover(), job(handover_s=0.3), SUPPORTS_HANDOVER, None, "already on (0.3 s"),
        (Handover(min_s=1.0), job(), SUPPORTS_HANDOVER, None, "leaves no room"),
    ],
)
def test_handover(
    action: Handover,
    config: FunctionConfig,
    facts: dict[str, Any],
    after: float | None,
    reason: str,
) -> None:
    plan = action.plan(config, LOCAL, facts)
    assert plan.reason.find(reason) >= 0 if reason else plan.applicable
    assert (plan.change.after if plan.change else None) == after


def split_facts(**extra: float) -> dict[str, Any]:
    """A function at 128 MB killed for memory, probed at 1024 MB."""
    return {
        "ooms": 4.0,
        "memory_mb": 128.0,
        "extra": {
            "supports_split": 1.0,
            "probe_peak_memory_mb": 372.0,
            "probe_memory_mb": 1024.0,
            **extra,
        },
    }


@pytest.mark.parametrize(
    ("action", "config", "facts", "after"),
    [
        # (372 - 12) x 1.1 / (128 - 12) = 3.4 -> 4 parts of 12 + 90 MB
        (Split(), job(), split_facts(runtime_memory_mb=12.0), 4),
        # nothing fixed known: (372 x 1.1) / 128 = 3.2 -> 4
        (Split(), job(), split_facts(), 4),
        # already in 2 parts, and a part still needs 200 MB: 2 x 188 x 1.1 / 116 = 3.6 -> 4
        (
            Split(),
            job(fan_out=2),
            split_facts(runtime_memory_mb=12.0, probe_peak_memory_mb=200.0),
            4,
        ),
        # no probe nor trace measured the need: parts x growth
        (Split(growth=3), job(), {"ooms": 1.0, "extra": {"supports_split": 1.0}}, 3),
        # more parts than the cap: the cap
        (Split(), job(), split_facts(probe_peak_memory_mb=3000.0), 16),
    ],
)
def test_split_sizes_parts_from_the_need(
    action: Split, config: FunctionConfig, facts: dict[str, Any], after: int
) -> None:
    plan = action.plan(config, LOCAL, facts)
    assert plan.change == Change(Knob.FAN_OUT, config.fan_out, after), plan.reason
    assert plan.summary.startswith(f"split into {after} parts")


@pytest.mark.parametrize(
    ("config", "facts", "reason"),
    [
        (job(), {**split_facts(), "extra": {"probe_peak_memory_mb": 372.0}}, "does not use"),
        (job(fan_out=None), split_facts(), "cannot be split"),
        (job(fan_out=16), split_facts(), "most parts (16)"),
        (job(), {**split_facts(), "ooms": 0.0}, "no invocation ran out"),
        (job(), split_facts(runtime_memory_mb=120.0), "leaves no room"),
    ],
)
def test_split_says_why_not(config: FunctionConfig, facts: dict[str, Any], reason: str) -> None:
    plan = Split().plan(config, LOCAL, facts)
    assert plan.change is None and reason in plan.reason


def decision(
    action: str, knob: Knob, before: float, after: float, facts: dict[str, Any]
) -> Decision:
    """An applied change, judged twice already (a third unchanged window decides)."""
    return Decision(
        "d",
        1000.0,
        FunctionRef("local", "f"),
        "rule",
        action,
        Severity.CRITICAL,
        Mode.APPLY,
        State.APPLIED,
        facts=facts,
        change=Change(knob, before, after),
        judged_windows=2,
    )


TIMED_OUT = {"invocations": 10.0, "timeouts": 10.0, "timeout_rate": 1.0, "error_rate": 1.0}
OOMED = {"invocations": 10.0, "ooms": 10.0, "oom_rate": 1.0, "error_rate": 1.0}
RULE = compile_condition("timeouts > 0.0 || ooms > 0.0", FACT_TYPES)


@pytest.mark.parametrize(
    ("made", "window", "state", "account"),
    [
        (
            decision("handover", Knob.HANDOVER_S, 0.0, 0.2, TIMED_OUT),
            {
                "invocations": 30.0,
                "timeouts": 0.0,
                "timeout_rate": 0.0,
                "error_rate": 0.0,
                "extra": {"chains": 10.0, "chains_failed": 0.0, "chain_links_max": 3.0},
            },
            State.IMPROVED,
            "handover on: 3 links, 0 timeouts; timeout_rate 1 -> 0",
        ),
        (  # the timeouts went, but chains fail instead: not improved
            decision("handover", Knob.HANDOVER_S, 0.0, 0.2, TIMED_OUT),
            {
                "invocations": 30.0,
                "timeouts": 0.0,
                "timeout_rate": 0.0,
                "error_rate": 0.1,
                "extra": {"chains": 10.0, "chains_failed": 3.0, "chain_links_max": 10.0},
            },
            State.PARTIAL,
            "handover on: 10 links, 0 timeouts, 3 chains failed",
        ),
        (
            decision("split", Knob.FAN_OUT, 1, 4, OOMED),
            {
                "invocations": 50.0,
                "ooms": 0.0,
                "oom_rate": 0.0,
                "error_rate": 0.0,
                "fan_out": 4.0,
                "extra": {"splits": 10.0, "splits_failed": 0.0, "split_parts_max": 4.0},
            },
            State.IMPROVED,
            "split into 4 parts: 0 OOMs, results merged; oom_rate 1 -> 0",
        ),
        (  # nothing changed: more parts cost more and did not help
            decision("split", Knob.FAN_OUT, 1, 4, OOMED),
            {
                "invocations": 50.0,
                "ooms": 50.0,
                "oom_rate": 1.0,
                "error_rate": 1.0,
                "fan_out": 4.0,
                "extra": {"splits": 10.0, "splits_failed": 10.0, "split_parts_max": 4.0},
            },
            State.ROLLED_BACK,
            "it cost more and did not help",
        ),
    ],
)
def test_judged_on_the_symptom_and_what_the_change_can_fail_at(
    made: Decision, window: dict[str, Any], state: State, account: str
) -> None:
    assert made.change is not None
    live = FunctionConfig(128, 2.0, fan_out=1, handover_s=0.0).with_changes(
        {made.change.knob: made.change.after}
    )
    judgement = judge(made, window, 2000.0, live, RULE, VerifyPolicy(windows=3))
    assert judgement.state is state
    assert judgement.reason.startswith(account)


def stuck_facts(**kw: Any) -> dict[str, Any]:
    return {
        "function": "f",
        "evidence": {
            "hot_site": "crunch (handler.py:9)",
            "allocation_site": "MemoryError: bytearray of 176 MB at handler.py:8 (grows with pages)",
            "allocation_grows_with": "pages",
        },
        "extra": {},
        **kw,
    }


def test_a_stuck_function_that_does_not_use_the_library_is_shown_how() -> None:
    handover_text, split_text = adoption_advice(stuck_facts(timeouts=3.0, ooms=2.0), stuck=True)
    assert "at the loop in crunch (handler.py:9)" in handover_text
    assert "`from tuner_handler import handover`" in handover_text
    assert "`for item in context.each(items):`" in handover_text
    assert "bytearray of 176 MB at handler.py:8" in split_text
    assert '`@split("pages")`' in split_text


def test_no_proposal_where_a_knob_can_act_or_the_code_already_uses_it() -> None:
    assert adoption_advice(stuck_facts(timeouts=3.0), stuck=False) == []
    uses = stuck_facts(
        timeouts=3.0, ooms=1.0, extra={"supports_handover": 1.0, "supports_split": 1.0}
    )
    assert adoption_advice(uses, stuck=True) == []
    unnamed = adoption_advice({"ooms": 1.0, "extra": {}}, stuck=True)
    assert len(unnamed) == 1 and '`@split("ITEMS")`' in unnamed[0]
