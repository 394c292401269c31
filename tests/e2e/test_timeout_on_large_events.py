"""A function that times out on its largest events is fixed on the local host, for real.

Its events are dicts (an order and its lines), which a fan-out cannot split: the daemon,
on the bundled rules, gives it a longer timeout instead, and later windows verify it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bench.local_loop import local_daemon
from tuner.daemon.scheduling import run_forever
from tuner.domain.lifecycle import State
from tuner.domain.model import Knob
from tuner.providers.local import Settings

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
    folder = tmp_path / "app" / "functions" / "orders"
    folder.mkdir(parents=True)
    (folder / "function.yaml").write_text(DECLARATION)
    (folder / "handler.py").write_text(HANDLER)
    settings = Settings(
        functions_dir=tmp_path / "app", state_dir=tmp_path / "state", http_port=None
    )
    provider, store, daemon = local_daemon(settings, tmp_path / "tuner.db", interval_s=3.0)
    stop = threading.Event()
    runner = threading.Thread(target=run_forever, args=(daemon, 3.0), kwargs={"stop": stop})
    provider.start()
    runner.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(
            d.state is State.IMPROVED for d in store.decisions(limit=1000)
        ):
            time.sleep(0.5)
    finally:
        stop.set()
        runner.join()
    try:
        decisions = [d for d in store.decisions(limit=1000) if d.ref.name == "orders"]
        records = provider.host.records.invocations(["orders"], 0, time.time() + 1)
        live = provider.host.config("orders")
    finally:
        provider.close()
        store.close()
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
