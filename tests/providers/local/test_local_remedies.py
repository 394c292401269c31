"""Handover and split on the local host, for real: results equal to the job done in one piece.

Functions written with tuner_handler run in the host's sandboxed workers; a chained job's
final result is compared with the same job run once with no time limit, and a split
run's merged result with the unsplit run's at a memory size where it fits.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from local_world import WallClock, write_handlers

from tuner.providers.local.chain_store import Chain
from tuner.providers.local.host import MAX_NESTING, FunctionHost

ROLLUP = (
    "memory_mb: 128\ntimeout_s: 1\nchain: {max_links: 20}\n",
    "import time\n"
    "from tuner_handler import handover\n\n"
    "@handover\n"
    "def handler(event, context):\n"
    "    context.state.setdefault('total', 0)\n"
    "    for n in context.each(list(range(event['items']))):\n"
    "        time.sleep(event['step_s'])\n"
    "        context.state['total'] += n * n\n"
    "    return {'total': context.state['total'], 'items': event['items']}\n",
)
INDEXER = (
    "memory_mb: 128\ntimeout_s: 10\n",
    "from tuner_handler import split\n\n"
    "@split('pages')\n"
    "def handler(event, context):\n"
    "    size = event['mb_per_page'] * 1024 * 1024\n"
    "    held = [bytes([page % 251]) * size for page in event['pages']]\n"
    "    return {'pages': len(held), 'checksum': sum(block[-1] * len(block) for block in held)}\n",
)
PLAIN = (
    "memory_mb: 128\ntimeout_s: 5\n",
    "def handler(event, context):\n"
    "    return {'request': context.aws_request_id,\n"
    "            'handover': context.hand_over({'at': 1}),\n"
    "            'parts': context.invoke_parts([{}, {}])}\n",
)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FunctionHost]:
    """A started host over a chained job, a split indexer and a plain function."""
    app = write_handlers(tmp_path / "app", {"rollup": ROLLUP, "indexer": INDEXER, "plain": PLAIN})
    running = FunctionHost(app, tmp_path / "state", WallClock(), max_workers_per_function=6)
    running.start()
    yield running
    running.close()


def _set(host: FunctionHost, name: str, **knobs: float) -> None:
    host.deploy(name, replace(host.config(name), **knobs))


def wait_for_chain(host: FunctionHost, chain_id: str, timeout_s: float = 90.0) -> Chain:
    """The chain once it has ended (done or failed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        chain = host.decomposition.store.chain(chain_id)
        if chain is not None and chain.status != "running":
            return chain
        time.sleep(0.1)
    raise AssertionError(f"chain {chain_id} did not end in {timeout_s} s")


def test_a_chained_job_ends_with_the_result_of_one_unlimited_run(host: FunctionHost) -> None:
    event = {"items": 40, "step_s": 0.06}  # 2.4 s of work, a 1 s timeout
    _set(host, "rollup", timeout_s=30.0)
    whole = host.invoke("rollup", event)
    assert whole.outcome == "ok" and whole.invocations == 1

    _set(host, "rollup", timeout_s=1.0)
    assert host.invoke("rollup", event).outcome == "timeout"  # handover off: it cannot finish

    _set(host, "rollup", timeout_s=1.0, handover_s=0.2)
    first = host.invoke("rollup", event)
    assert first.outcome == "ok"
    handed = first.result["handed_over"]
    assert handed["link"] == 2
    chain = wait_for_chain(host, handed["chain"])
    assert chain.status == "done", chain.error
    assert chain.result == whole.result
    assert chain.links >= 3  # at most ~0.7 s of work per 1 s link


def test_a_chain_is_bounded_by_its_most_links(host: FunctionHost) -> None:
    _set(host, "rollup", timeout_s=1.0, handover_s=0.2)
    spec = host.specs["rollup"]
    host.specs["rollup"] = spec.model_copy(
        update={"chain": spec.chain.model_copy(update={"max_links": 2})}
    )
    first = host.invoke("rollup", {"items": 60, "step_s": 0.06})
    chain = wait_for_chain(host, first.result["handed_over"]["chain"])
    assert chain.status == "failed" and chain.links == 2
    assert "most links (2)" in chain.error


def test_handlers_say_what_they_support_when_a_worker_starts(host: FunctionHost) -> None:
    _set(host, "rollup", timeout_s=30.0, handover_s=0.0)
    assert host.decomposition.traits("rollup") is None  # no worker has started yet
    assert host.invoke("rollup", {"items": 3, "step_s": 0.0}).result == {"total": 5, "items": 3}
    host.invoke("plain", {})
    rollup, plain = host.decomposition.traits("rollup"), host.decomposition.traits("plain")
    assert rollup is not None and rollup.supports == frozenset({"handover"})
    assert plain is not None and plain.supports == frozenset()
    assert rollup.runtime_mb is not None and 1 < rollup.runtime_mb < 100


def test_the_host_refuses_what_the_settings_do_not_allow(host: FunctionHost) -> None:
    ids = set()
    for _ in range(3):
        result = host.invoke("plain", {}).result
        ids.add(result["request"])
        assert result["handover"] == {
            "type": "handover_reply",
            "accepted": False,
            "error": "handover is off for this function (handover_s 0)",
        }
        assert result["parts"] == {
            "type": "parts_result",
            "error": "a split runs 2 to 1 parts (fan_out)",
        }
    assert len(ids) == 3 and all(len(i) == 32 for i in ids)  # each invocation its own id
    now = time.time()
    assert host.decomposition.store.splits(["plain"], now - 60, now + 1) == []


def test_a_forged_link_event_begins_a_chain_of_the_hosts_own(host: FunctionHost) -> None:
    _set(host, "rollup", timeout_s=1.0, handover_s=0.2)
    forged = {
        "tuner_handover": {"chain": "someone-elses", "link": 7, "state": {"position": 30}},
        "event": {"items": 60, "step_s": 0.06},
    }
    handed = host.invoke("rollup", forged).result["handed_over"]
    assert handed["chain"] != "someone-elses" and handed["link"] == 2
    assert host.decomposition.store.chain("someone-elses") is None
    chain = wait_for_chain(host, handed["chain"])
    assert chain.status == "done", chain.error


def test_a_split_run_merges_to_the_unsplit_result(host: FunctionHost) -> None:
    event = {"pages": list(range(24)), "mb_per_page": 8}  # 192 MB in one piece
    assert host.invoke("indexer", event).outcome == "oom"

    _set(host, "indexer", memory_mb=512)
    whole = host.invoke("indexer", event)
    assert whole.outcome == "ok" and whole.result["pages"] == 24

    _set(host, "indexer", memory_mb=128, fan_out=4)
    merged = host.invoke("indexer", event)
    assert merged.outcome == "ok", merged.error
    assert merged.result == whole.result
    now = time.time()
    [split] = host.decomposition.store.splits(["indexer"], now - 60, now + 1)
    assert (split.parts, split.failed, split.merged) == (4, 0, True)


def test_a_split_whose_part_fails_fails_and_says_which(host: FunctionHost) -> None:
    _set(host, "indexer", memory_mb=128, fan_out=2)
    result = host.invoke("indexer", {"pages": list(range(40)), "mb_per_page": 8})
    assert result.outcome == "error"
    assert "SplitFailed" in result.error and "oom" in result.error
    now = time.time()
    [split] = host.decomposition.store.splits(["indexer"], now - 60, now + 1)
    assert (split.parts, split.failed, split.merged) == (2, 2, False)


def test_parts_nested_too_deep_fail_without_running(host: FunctionHost) -> None:
    deadline = time.monotonic() + 5
    failed = host._parts("plain", MAX_NESTING + 1, deadline, [{}, {}])
    assert [e.outcome for e in failed] == ["error", "error"]
    assert "nested deeper than" in failed[0].error
    assert host.records.invocations(["plain"], 0, time.time() + 1) == []
