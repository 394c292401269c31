"""The tracing executor for real: call trees, killed invocations, nested calls, sampling."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from local_world import WallClock, traced_host, write_handlers

from tuner.domain.model import FunctionRef
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.provider import LocalProvider
from tuner.providers.local.trace_executor import MEMORY_PRESSURE
from tuner.providers.local.tracing_specs import TracingSpec
from tuner.trace.folded import fold

FUNCTIONS = {
    "nested": (
        "memory_mb: 128\ntimeout_s: 5\ntracing: {mode: full}\n",
        "import time\n"
        "\n"
        "def inner():\n"
        "    time.sleep(0.06)\n"
        "\n"
        "def outer():\n"
        "    time.sleep(0.06)\n"
        "    inner()\n"
        "\n"
        "def handler(event, context):\n"
        "    time.sleep(0.06)\n"
        "    outer()\n"
        "    return 'done'\n",
    ),
    "canvas": (
        "memory_mb: 96\ntimeout_s: 5\ntracing: {mode: full}\n",
        "PAGE = 1024 * 1024\n"
        "\n"
        "def handler(event, context):\n"
        "    pages = int(event['pages'])\n"
        "    canvas = bytearray(pages * PAGE)\n"
        "    return len(canvas)\n",
    ),
    "spinner": (
        "memory_mb: 128\ntimeout_s: 1\ntracing: {mode: full}\n",
        "def spin():\n"
        "    total = 0\n"
        "    while True:\n"
        "        total += 1\n"
        "\n"
        "def handler(event, context):\n"
        "    spin()\n",
    ),
    "killed": (
        "memory_mb: 256\ntimeout_s: 5\ntracing: {mode: full}\n",
        "import os, signal, time\n"
        "\n"
        "def handler(event, context):\n"
        "    blocks = [bytearray(b'x' * (8 << 20)) for _ in range(5)]\n"
        "    time.sleep(0.5)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would\n",
    ),
    "caller": (
        "memory_mb: 128\ntimeout_s: 5\ntracing: {mode: full}\n",
        "def handler(event, context):\n"
        "    first = context.invoke('nested', {})\n"
        "    try:\n"
        "        context.invoke('spinner', {})\n"
        "    except Exception as error:\n"
        "        return [first, type(error).__name__, error.outcome]\n",
    ),
    "sampled": (
        "memory_mb: 128\ntimeout_s: 5\ntracing: {mode: sample, sample_rate: 0.0, keep: 3}\n",
        "def handler(event, context):\n    return event\n",
    ),
    "untraced": (
        "memory_mb: 128\ntimeout_s: 5\ntracing: {mode: off}\n",
        "def handler(event, context):\n    return event\n",
    ),
    "everything": (
        "memory_mb: 128\ntimeout_s: 5\ntracing: {mode: full, keep: 3}\n",
        "def handler(event, context):\n    return event\n",
    ),
}


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[FunctionHost]:
    """A started host over the traced test functions."""
    for name, (declaration, source) in FUNCTIONS.items():
        folder = tmp_path / "app" / "functions" / name
        folder.mkdir(parents=True)
        (folder / "function.yaml").write_text(declaration)
        (folder / "handler.py").write_text(source)
    state = tmp_path / "state"
    host = traced_host(tmp_path / "app", state, max_workers_per_function=2)
    host.start()
    yield host
    host.close()


def _store(host: FunctionHost):  # type: ignore[no-untyped-def]
    assert host.tracing is not None
    return host.tracing.store


def test_known_call_structure_gives_exactly_its_folded_stacks(traced: FunctionHost) -> None:
    assert traced.invoke("nested", {}).outcome == "ok"
    [trace] = _store(traced).traces("nested")
    folded = fold([trace], "wall")
    assert set(folded) == {
        "nested;handler (handler.py:10)",
        "nested;handler (handler.py:10);outer (handler.py:6)",
        "nested;handler (handler.py:10);outer (handler.py:6);inner (handler.py:3)",
    }
    # each level sleeps 60 ms itself; a starved sampler charges a late sample to one stack
    assert all(weight > 0 for weight in folded.values())
    assert 170_000 <= sum(folded.values()) <= 400_000
    assert trace.complete and trace.outcome == "ok"
    assert trace.tree is not None and trace.tree.wall_ms >= 170


def test_out_of_memory_leaves_its_peak_and_the_failed_allocation(traced: FunctionHost) -> None:
    assert traced.invoke("canvas", {"pages": 150}).outcome == "oom"
    [trace] = _store(traced).traces("canvas")
    assert trace.outcome == "oom"
    memory = trace.memory
    assert memory is not None and memory.failed is not None
    assert (memory.failed.file, memory.failed.line, memory.failed.kind) == (
        "handler.py",
        5,
        "bytearray",
    )
    assert memory.failed.size_mb == 150.0
    assert memory.failed.grows_with == ("pages",)
    assert memory.peak_mb > 0 and memory.baseline_mb > 0
    assert memory.need_mb is not None and 150 < memory.need_mb < 150 + memory.limit_mb
    assert trace.exception is not None and trace.exception.type == "MemoryError"


def test_timeout_leaves_where_the_invocation_was(traced: FunctionHost) -> None:
    assert traced.invoke("spinner", {}).outcome == "timeout"
    [trace] = _store(traced).traces("spinner")
    assert not trace.complete and trace.outcome == "timeout"
    assert [f.function for f in trace.where] == ["handler", "spin"]
    assert trace.where[-1].file == "handler.py" and trace.where[-1].line in (3, 4)
    assert trace.cpu_ms > 100  # it spun on the CPU (what the last flush before the kill saw)


def test_a_killed_worker_leaves_what_it_had_reached(traced: FunctionHost) -> None:
    assert traced.invoke("killed", {}).outcome == "error"
    [trace] = _store(traced).traces("killed")
    assert not trace.complete and "exited with code -9" in trace.error
    assert trace.memory is not None
    assert trace.memory.peak_mb >= trace.memory.baseline_mb + 35  # five 8 MB blocks
    assert [(f.function, f.line) for f in trace.where] == [("handler", 5)]


def test_nested_calls_are_child_spans_of_one_trace(traced: FunctionHost) -> None:
    result = traced.invoke("caller", {})
    assert result.outcome == "ok"
    assert result.result == ["done", "InvocationError", "timeout"]
    [caller] = _store(traced).traces("caller")
    [nested] = _store(traced).traces("nested")
    [spinner] = _store(traced).traces("spinner")
    invokes = {s.attributes["faas.invoked_name"]: s for s in caller.spans if s.kind == "invoke"}
    assert set(invokes) == {"nested", "spinner"}
    assert nested.trace_id == spinner.trace_id == caller.trace_id
    assert nested.parent_span_id == invokes["nested"].span_id
    assert invokes["spinner"].error and spinner.outcome == "timeout"
    assert invokes["nested"].duration_ms >= 170


def test_sampling_traces_the_first_of_a_revision_and_the_ring_is_bounded(
    traced: FunctionHost,
) -> None:
    for index in range(5):
        traced.invoke("sampled", index)
        traced.invoke("untraced", index)
        traced.invoke("everything", index)
    store = _store(traced)
    assert len(store.traces("sampled")) == 1  # rate 0: only the first of revision 1
    assert store.traces("untraced") == []
    kept = store.traces("everything")
    assert len(kept) == 3  # keep: 3, the oldest pruned
    assert [t.spans[0].attributes["tuner.outcome"] for t in kept] == ["ok"] * 3
    assert sorted(p.name for p in store.root.iterdir()) == ["everything", "sampled"]


def test_window_facts_carry_the_traced_need_and_the_evidence(traced: FunctionHost) -> None:
    provider = LocalProvider(traced, WallClock(), http_port=None, traffic=False)
    start = WallClock().now() - 1
    traced.invoke("canvas", {"pages": 150})
    traced.invoke("spinner", {})
    targets = [t for t in provider.targets() if t.ref.name in ("canvas", "spinner")]
    facts = provider.observe(targets, start, WallClock().now() + 1)
    canvas = facts[FunctionRef("local", "canvas")]
    assert 150 < canvas.extra["traced_peak_memory_mb"] < 150 + 96
    assert canvas.extra["traced_failed_allocation_mb"] == 150.0
    assert canvas.evidence["allocation_site"].startswith(
        "MemoryError: bytearray of 150 MB at handler.py:5 (grows with pages)"
    )
    assert canvas.evidence["allocation_grows_with"] == "pages"
    spinner = facts[FunctionRef("local", "spinner")]
    assert "spin (handler.py:1)" in spinner.evidence["hot_path"]
    assert "at the timeout it was in spin (handler.py:" in spinner.evidence["hot_path"]


def test_allocation_sites_are_followed_under_memory_pressure_only(tmp_path: Path) -> None:
    handler = (
        "import time\n"
        "\n"
        "def build(mb):\n"
        "    return bytearray(mb << 20)\n"
        "\n"
        "def handler(event, context):\n"
        "    table = build(event['mb'])\n"
        "    time.sleep(0.05)\n"
        "    return len(table)\n"
    )
    spec = "timeout_s: 30\ntracing: {mode: full, allocations: 1.0}\n"
    functions = {  # the same code near its memory limit, and far below it
        name: (f"memory_mb: {memory}\n{spec}", handler)
        for name, memory in (("builder", 64), ("roomy", 1024))
    }
    state = tmp_path / "state"
    host = traced_host(write_handlers(tmp_path / "app", functions), state, TracingSpec())
    host.start()
    try:
        for name in ("builder", "roomy"):
            for _ in range(2):  # the first follows none: a cold worker, no pressure seen yet
                assert host.invoke(name, {"mb": 24}).outcome == "ok"
    finally:
        host.close()
    assert host.tracing is not None
    first, second = host.tracing.store.traces("builder")[-2:]
    assert first.memory is not None and not first.memory.sites
    memory = second.memory
    assert memory is not None and memory.allocated_peak_mb > 20
    assert memory.peak_mb >= MEMORY_PRESSURE * memory.limit_mb
    top = memory.sites[0]
    assert (top.file, top.line) == ("handler.py", 4) and top.size_mb > 20
    assert top.stack == ("handler (handler.py:7)", "build (handler.py:4)")
    # far below its limit, its sites would explain nothing: tracemalloc's cost is not paid
    roomy = host.tracing.store.traces("roomy")
    assert len(roomy) == 2 and all(t.memory is not None and not t.memory.sites for t in roomy)


def test_allocation_sites_are_not_followed_where_they_could_run_it_out_of_memory(
    tmp_path: Path,
) -> None:
    handler = (  # fills its worker up to ``to_mb``, whatever the worker held before
        "def handler(event, context):\n"
        "    with open('/proc/self/status') as status:\n"
        "        rss = next(int(line.split()[1]) for line in status if line.startswith('VmRSS'))\n"
        "    table = bytearray((event['to_mb'] << 20) - (rss << 10))\n"
        "    return len(table)\n"
    )
    spec = "memory_mb: 256\ntimeout_s: 30\ntracing: {mode: full, allocations: 1.0}\n"
    host = traced_host(write_handlers(tmp_path / "app", {"brim": (spec, handler)}), tmp_path / "s")
    host.start()
    try:  # 70% of its limit, then 98%: the sites are followed after the first only
        outcomes = [host.invoke("brim", {"to_mb": mb}).outcome for mb in (180, 250, 180)]
    finally:
        host.close()
    assert outcomes == ["ok"] * 3
    assert host.tracing is not None
    peaks = [t.memory.peak_mb for t in host.tracing.store.traces("brim") if t.memory is not None]
    assert 175 < peaks[0] < 185 and 245 < peaks[1] < 252
    followed = [bool(t.memory and t.memory.sites) for t in host.tracing.store.traces("brim")]
    assert followed == [False, True, False]
