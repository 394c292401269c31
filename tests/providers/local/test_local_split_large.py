"""Splitting only the large payloads on the local host, for real: the bundled oom rule's first choice.

A function written with tuner_handler's split runs its usual small events in 128 MB; a
rare large one runs out of memory.  From the window the host reports (the probe's
payload and peak, the worker's runtime, that the handler splits), the bundled ``oom``
rule plans ``split-large``, not more memory; once applied, the large event runs as parts
that fit, and the small ones still run whole.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_world import WallClock, write_handlers

from tuner.decisions.planning import plan_finding
from tuner.domain.model import Finding, FunctionRef, Knob, Mode, Severity
from tuner.engine import load_rules
from tuner.engine.facts import build_facts
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.probing import ProbePolicy
from tuner.providers.local.provider import LocalProvider

ROOT = Path(__file__).resolve().parents[3]
OOM = load_rules([ROOT / "rules" / "default.yaml"]).by_name("oom")
PAGE = "x" * 4000
SMALL = {"pages": [PAGE] * 4}  # 16 KB, some 16 MB of work
LARGE = {"pages": [PAGE] * 40}  # 160 KB, some 160 MB of work: over 128 MB
INDEXER = (
    "memory_mb: 128\ntimeout_s: 20\n",
    "from tuner_handler import split\n\n"
    "@split('pages')\n"
    "def handler(event, context):\n"
    "    held = [page * 1000 for page in event['pages']]  # each page's 4 MB of work\n"
    "    return {'pages': len(held), 'chars': sum(len(h) for h in held)}\n",
)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[LocalProvider]:
    """A started provider over the split indexer, probes on."""
    app = write_handlers(tmp_path / "app", {"indexer": INDEXER})
    host = FunctionHost(app, tmp_path / "s", WallClock(), probe=ProbePolicy())
    running = LocalProvider(host, WallClock(), http_port=None, traffic=False)
    running.start()
    yield running
    running.close()


def test_the_rare_large_event_is_split_and_every_other_runs_whole(
    provider: LocalProvider,
) -> None:
    host, since = provider.host, time.time()
    for _ in range(120):
        assert host.invoke("indexer", SMALL).outcome == "ok"
    assert host.invoke("indexer", LARGE).outcome == "oom"
    host.prober.wait(60.0)

    [target] = provider.targets()
    window = provider.observe([target], since, time.time() + 1)[FunctionRef("local", "indexer")]
    facts = build_facts(target, window, {})
    assert facts["split_above_kb"] == 0.0 and facts["extra"]["supports_split"] == 1.0
    assert facts["extra"]["probe_payload_kb"] == pytest.approx(len(json.dumps(LARGE)) / 1024)
    assert OOM is not None
    finding = Finding(target.ref, "oom", Severity.CRITICAL, facts, time.time())
    [decision] = plan_finding(OOM, finding, target, Mode.APPLY, time.time())
    assert decision.action == "split-large", decision.summary
    assert decision.change is not None and decision.change.knob is Knob.SPLIT_ABOVE_KB
    above = int(decision.change.after)
    assert 16 < above < 160  # the small events run whole, the large one in parts

    provider.apply(target, [decision.change], reason="test")
    split_at = time.time()
    large = host.invoke("indexer", LARGE)
    assert large.outcome == "ok" and large.result == {"pages": 40, "chars": 40 * 4_000_000}
    assert host.invoke("indexer", SMALL).outcome == "ok"
    [split] = host.decomposition.store.splits(["indexer"], split_at - 1, time.time() + 1)
    assert split.merged and split.parts == -(-len(json.dumps(LARGE)) // (above * 1024))
    peaks = [
        r.peak_memory_mb for r in host.records.invocations(["indexer"], split_at, time.time() + 1)
    ]
    assert all(p is not None and p < 128 for p in peaks)
