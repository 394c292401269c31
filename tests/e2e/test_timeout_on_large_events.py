"""A function that times out on its largest events is fixed on the local host, for real.

Its events are dicts (an order and its lines), which a fan-out cannot split: the daemon,
on the bundled rules, gives it a longer timeout instead, and later windows verify it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.one_function import one_function
from tuner.domain.lifecycle import State
from tuner.domain.model import Knob

pytestmark = pytest.mark.slow

SMALL = {"order": "small", "lines": list(range(3))}
LARGE = {"order": "large", "lines": list(range(60))}  # 20 ms a line: 1.2 s, over its 1 s
DECLARATION = f"""\
memory_mb: 128
timeout_s: 1
traffic:
  rate_per_s: 4
  events: [{SMALL}, {LARGE}]
"""
HANDLER = """\
import time


def handler(event, context):
    for line in event["lines"]:
        time.sleep(0.02)  # books one order line
    return {"order": event["order"], "lines": len(event["lines"])}
"""


def test_a_function_timing_out_on_large_dict_events_gets_a_verified_longer_timeout(
    tmp_path: Path,
) -> None:
    with one_function(tmp_path, "orders", DECLARATION, HANDLER) as fn:
        fn.run_until(
            lambda: any(d.state is State.IMPROVED for d in fn.store.decisions(limit=1000)), 90
        )
        decisions = [d for d in fn.store.decisions(limit=1000) if d.ref.name == "orders"]
        records = fn.provider.host.records.invocations(["orders"], 0, time.time() + 1)
        live = fn.provider.host.config("orders")
    changed = [d for d in decisions if d.change is not None and d.applied]
    assert [(d.rule, d.change.knob, d.change.before, d.change.after) for d in changed] == [
        ("timeout", Knob.TIMEOUT_S, 1.0, 2.0)
    ]
    (fix,) = changed
    assert fix.state is State.IMPROVED and "timeout_rate" in fix.reason
    assert fix.facts["extra"]["split_share"] == 0.0  # the events that timed out are dicts
    assert not [d for d in decisions if d.action == "fan-out"]  # never planned: it cannot split
    at_fix = [r for r in records if str(r.revision) == live.revision]
    assert at_fix and all(r.outcome == "ok" for r in at_fix)
    assert any(r.duration_ms > 1000 for r in at_fix)  # large orders run to their end now
