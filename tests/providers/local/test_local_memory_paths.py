"""The code path holding most of a function's memory, read from real traces on the host."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_world import WallClock, traced_host, write_handlers

from tuner.decisions.shape_advice import shape_proposals
from tuner.providers.local.provider import LocalProvider
from tuner.providers.local.tracing_specs import TracingSpec

HOG = {
    # one invocation in five renders a large page; the others need little
    "report": (
        "memory_mb: 128\ntimeout_s: 10\n",
        "def render(pages):\n"
        "    return bytearray(pages * 1024 * 1024)\n"
        "\n"
        "\n"
        "def handler(event, context):\n"
        "    page = render(event['pages']) if event['pages'] else b''\n"
        "    rows = [str(n) for n in range(2000)]\n"
        "    return len(page) + len(rows)\n",
    ),
}


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[LocalProvider]:
    """A started provider over the report function, tracing every invocation."""
    host = traced_host(
        write_handlers(tmp_path / "app", HOG),
        tmp_path / "state",
        TracingSpec(mode="full", allocations=1.0),
    )
    running = LocalProvider(host, WallClock(), http_port=None, traffic=False)
    running.start()
    yield running
    running.close()


def test_the_path_holding_the_peak_is_named_with_its_share_and_the_rest(
    provider: LocalProvider,
) -> None:
    since = time.time()
    for pages in (80, 80, 0, 0, 0, 0, 0, 0, 0, 0):
        assert provider.host.invoke("report", {"pages": pages}).outcome == "ok"

    [window] = provider.observe(provider.targets(), since, time.time() + 1).values()
    extra, evidence = window.extra, window.evidence
    facts = {"function": "report", "extra": dict(extra), "evidence": dict(evidence)}

    # 80 MB of a peak near 97 MB (the worker's own ~17 MB included), in 2 of 10 invocations
    assert extra["memory_path_mb"] == pytest.approx(80.0, abs=0.5)
    assert 0.7 < extra["memory_path_share"] < 0.9
    assert 5.0 < extra["memory_rest_mb"] < 40.0
    assert extra["memory_path_invocations_share"] == pytest.approx(0.2)
    assert evidence["memory_path"].startswith("handler (handler.py:6) -> render (handler.py:2)")
    [proposal] = shape_proposals(facts, None)
    assert proposal.startswith("handler (handler.py:6) -> render (handler.py:2) (trace ")
    assert "holds 80 MB" in proposal and "in 20% of the invocations" in proposal
    assert "Move it into a function of its own with about 88 MB" in proposal


def test_without_followed_allocations_there_is_no_path(provider: LocalProvider) -> None:
    since = time.time()
    for _ in range(3):
        assert provider.host.invoke("report", {"pages": 0}).outcome == "ok"

    [window] = provider.observe(provider.targets(), since, time.time() + 1).values()

    assert not any(name.startswith("memory_path") for name in window.extra)
    assert "memory_path" not in window.evidence
