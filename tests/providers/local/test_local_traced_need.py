"""What a trace of an invocation killed for memory says its need is, on the local host.

Real workers, traced for real: a ``bytearray`` made in a nested helper, its size written
over several lines, is sized from the trace; an allocation in a loop is named but gives no
need, because the invocation would have gone on allocating after it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_world import WallClock, traced_host, write_handlers

from tuner.domain.model import FunctionRef, WindowFacts
from tuner.providers.local.probing import ProbePolicy
from tuner.providers.local.provider import LocalProvider
from tuner.providers.local.trace_executor import TracingSpec

HANDLERS = {
    "helper": (
        "memory_mb: 128\ntimeout_s: 10\n",
        "MB = 1024 * 1024\n\n\n"
        "def build(event):\n"
        "    def fill(size_mb):\n"
        "        block = bytearray(\n"
        "            size_mb << 20\n"
        "        )\n"
        "        return block\n"
        "    return fill(event['mb'])\n\n\n"
        "def handler(event, context):\n"
        "    return len(build(event))\n",
    ),
    # 180,000 short strings and their join: some 115 MB untraced, in 128 MB.
    "strings": (
        "memory_mb: 128\ntimeout_s: 60\n",
        "def handler(event, context):\n"
        "    parts = [str(n % 10) * 256 for n in range(event['parts'])]\n"
        "    return len(''.join(parts))\n",
    ),
    "concat": (
        "memory_mb: 128\ntimeout_s: 10\n",
        "def handler(event, context):\n"
        "    piece = bytes(event['chunk_mb'] * 1024 * 1024)\n"
        "    blob = b''\n"
        "    for _ in range(event['chunks']):\n"
        "        blob += piece\n"
        "    return len(blob)\n",
    ),
}


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[LocalProvider]:
    """Every invocation traced; no probes, so that only the trace speaks."""
    write_handlers(tmp_path / "fns", HANDLERS)
    host = traced_host(
        tmp_path / "fns",
        tmp_path / "state",
        TracingSpec(mode="full"),
        probe=ProbePolicy(enabled=False),
    )
    running = LocalProvider(host, WallClock(), http_port=None, traffic=False)
    running.start()
    yield running
    running.close()


def window(provider: LocalProvider, name: str, since: float) -> WindowFacts:
    (target,) = [t for t in provider.targets() if t.ref.name == name]
    return provider.observe([target], since, time.time() + 1)[FunctionRef("local", name)]


def test_a_nested_helper_s_bytearray_over_several_lines_is_sized(
    provider: LocalProvider,
) -> None:
    since = time.time()
    assert provider.host.invoke("helper", {"mb": 300}).outcome == "oom"
    facts = window(provider, "helper", since)
    assert facts.extra["traced_failed_allocation_mb"] == 300.0
    assert 300 < facts.extra["traced_peak_memory_mb"] < 300 + 64  # what it held + 300 MB
    assert facts.evidence["allocation_site"].startswith(
        "MemoryError: bytearray of 300 MB at handler.py:6 (grows with size_mb)"
    )


def test_an_allocation_in_a_loop_is_named_but_gives_no_need(provider: LocalProvider) -> None:
    since = time.time()
    assert provider.host.invoke("concat", {"chunk_mb": 10, "chunks": 30}).outcome == "oom"
    facts = window(provider, "concat", since)
    assert "traced_failed_allocation_mb" not in facts.extra
    assert facts.extra["traced_peak_memory_mb"] <= 128 + 16  # what it reached, no more
    assert "bytes concatenation" in facts.evidence["allocation_site"]
    assert "at handler.py:5" in facts.evidence["allocation_site"]


def test_following_allocations_needs_no_memory_the_function_does_not(tmp_path: Path) -> None:
    # Every traced invocation of a function under memory pressure follows its allocations.
    # A snapshot of its many small objects would take 4 times tracemalloc's own records,
    # which alone reach 2% of the limit: both must fit in the 10% the function has left.
    write_handlers(tmp_path / "fns", {"strings": HANDLERS["strings"]})
    spec = TracingSpec(mode="full", allocations=1.0)
    host = traced_host(tmp_path / "fns", tmp_path / "state", spec, probe=ProbePolicy(enabled=False))
    host.start()
    try:
        outcomes = [host.invoke("strings", {"parts": 180_000}).outcome for _ in range(4)]
        traces = host.tracing.store.traces("strings") if host.tracing is not None else []
    finally:
        host.close()
    assert outcomes == ["ok"] * 4
    followed = [t for t in traces if t.memory is not None and t.memory.sites]
    assert followed and "handler.py:2" in followed[-1].memory.sites[0].stack[-1]
