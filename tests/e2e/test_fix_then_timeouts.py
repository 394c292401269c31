"""A memory fix after which invocations run on and time out is kept; the timeouts get their own fix.

On the local host, for real: a function killed for memory at 128 MB would, with enough
memory, run past its 2 s timeout.  The memory change that stops the OOMs is never rolled
back to 128 MB (a size known to fail); the timeouts that follow are a new symptom, which
the timeout rule fixes with a longer timeout, verified in later windows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.one_function import one_function
from tuner.domain.lifecycle import State
from tuner.domain.model import Knob

pytestmark = pytest.mark.slow

DECLARATION = """\
memory_mb: 128
timeout_s: 2
traffic:
  rate_per_s: 2
  events: [{mb: 150, seconds: 2.1}]
"""
HANDLER = """\
import time


def handler(event, context):
    block = bytearray(event["mb"] * 1024 * 1024)
    time.sleep(event["seconds"])  # renders into the block
    return len(block)
"""


def test_a_memory_fix_is_kept_and_the_timeouts_after_it_are_fixed_apart(tmp_path: Path) -> None:
    with one_function(tmp_path, "render", DECLARATION, HANDLER) as fn:

        def timeout_fixed() -> bool:
            return any(
                d.rule == "timeout" and d.state is State.IMPROVED
                for d in fn.store.decisions(limit=1000)
            )

        fn.run_until(timeout_fixed, 120)
        decisions = fn.store.decisions(limit=1000)
        live = fn.provider.host.config("render")
    assert not [d for d in decisions if d.undoes]  # nothing rolled back
    changed = [
        d
        for d in decisions
        if d.change is not None and d.applied and d.change.knob is not Knob.TRACING
    ]
    assert [(d.rule, d.change.knob) for d in changed] == [
        ("oom", Knob.MEMORY_MB),
        ("timeout", Knob.TIMEOUT_S),
    ]
    memory, timeout = changed
    assert memory.state is State.IMPROVED  # kept: 128 MB is known to fail
    # The timeout rule acted on the invocations that ran on at the new size.
    assert timeout.facts["ooms"] == 0 and timeout.facts["timeouts"] > 0
    assert timeout.state is State.IMPROVED
    assert live.memory_mb == memory.change.after > 150 and live.timeout_s == 3.0
