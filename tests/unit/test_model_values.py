"""The shared value types: references as dictionary keys, decision copies, new ids."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State, Verdict
from tuner.domain.model import Change, FunctionRef, Knob, Limits, Mode, Severity, new_id


def test_a_reference_is_a_key_equal_to_an_equal_reference_and_parses_back() -> None:
    ref = FunctionRef("aws", "resize", "eu-west-1")
    same = FunctionRef.parse("aws:eu-west-1/resize")
    assert ref.key == "aws:eu-west-1/resize" and same == ref and hash(same) == hash(ref)
    assert {ref: 1}[same] == 1
    assert FunctionRef("aws", "resize") != ref  # the scope counts
    assert dataclasses.replace(ref, name="thumb").key == "aws:eu-west-1/thumb"
    assert sorted([FunctionRef("b", "a"), FunctionRef("a", "z")])[0].provider == "a"
    assert repr(ref) == "FunctionRef(provider='aws', name='resize', scope='eu-west-1')"
    copied = pickle.loads(pickle.dumps(ref))
    assert copied == ref and hash(copied) == hash(ref) and copied.key == ref.key


def decision() -> Decision:
    return Decision(
        "d1",
        1.0,
        FunctionRef("sim", "f"),
        "oom",
        "more-memory",
        Severity.CRITICAL,
        Mode.APPLY,
        State.SKIPPED,
        Verdict.SKIP,
        {"ooms": 3.0},
        Change(Knob.MEMORY_MB, 128, 256),
        reason="cap",
    )


def test_a_replaced_decision_is_what_dataclasses_replace_makes() -> None:
    d = decision()
    copy = d.replaced(id="d2", seen=4, last_seen=9.0)
    assert copy == dataclasses.replace(d, id="d2", seen=4, last_seen=9.0)
    assert (copy.id, copy.seen, copy.last_seen, d.id, d.seen) == ("d2", 4, 9.0, "d1", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.id = "d3"  # type: ignore[misc]


def test_replacing_a_field_a_decision_does_not_have_is_refused() -> None:
    with pytest.raises(TypeError, match="sene"):
        decision().replaced(sene=2)


def test_new_ids_are_32_hex_digits_and_do_not_repeat() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


@pytest.mark.parametrize(
    ("knob", "value", "clamped"),
    [
        (Knob.MEMORY_MB, 99_999, 10_240),
        (Knob.MEMORY_MB, 1, 128),
        (Knob.MEMORY_MB, 209.0000001, 209),  # 190 x 1.1: no float noise rounds it up
        (Knob.TIMEOUT_S, 5000, 900.0),
        (Knob.BATCH_SIZE, 0, 1),
        (Knob.BATCH_SIZE, 7.9, 7),  # counts are whole
        (Knob.FAN_OUT, 1000, 64),
        (Knob.CONCURRENCY, 0.4, 1),
        (Knob.CACHE_TTL_S, 10**9, 86_400),
        (Knob.TRACING, 0.5, 0.5),  # no range: as it is
    ],
)
def test_limits_clamp_every_knob(knob: Knob, value: float, clamped: float) -> None:
    assert Limits().clamp(knob, value) == clamped


def test_limits_round_memory_up_to_the_step() -> None:
    limits = Limits(memory_min_mb=128, memory_max_mb=4096, memory_step_mb=64)
    assert limits.clamp(Knob.MEMORY_MB, 130) == 192
    assert limits.allows(Knob.MEMORY_MB, 4096) and not limits.allows(Knob.MEMORY_MB, 4097)
    assert limits.allows(Knob.TRACING, 7.0)
