"""Forged traces against the host: held to the tracing caps by the host that receives them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile import TRACE_FORGER
from local_world import traced_host, write_handlers

from tuner.providers.local.host import FunctionHost
from tuner.providers.local.trace_evidence import StoredTraces
from tuner.providers.local.trace_executor import Tracing
from tuner.providers.local.trace_messages import ProfileCaps, checked_profile
from tuner.providers.local.tracing_specs import TracingSpec
from tuner.trace.model import CallNode, Frame, Trace
from tuner.trace.storing import TraceStore

FUNCTIONS = {"forger": ("memory_mb: 256\ntimeout_s: 10\ntracing: {mode: full}\n", TRACE_FORGER)}


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FunctionHost]:
    running = traced_host(write_handlers(tmp_path / "app", FUNCTIONS), tmp_path / "state")
    running.start()
    yield running
    running.close()


def stored(host: FunctionHost) -> tuple[dict[str, Any], int]:
    """The one stored trace of the forger, as JSON, and the size of its file."""
    [path] = (host.state_dir / "traces" / "forger").glob("*.json")
    return json.loads(path.read_text()), path.stat().st_size


def count(node: dict[str, Any] | None) -> int:
    return 0 if node is None else 1 + sum(count(c) for c in node["children"])


def test_a_55000_node_trace_is_cut_unread(host: FunctionHost) -> None:
    result = host.invoke("forger", {"nodes": 55_000})

    trace, size = stored(host)
    assert result.outcome == "ok"
    assert trace["tree"] is None and not trace["complete"]
    assert "over 2097152" in trace["spans"][0]["attributes"]["tuner.trace_cut"]
    assert size < 20_000


def test_a_trace_over_max_nodes_is_cut_to_it_and_marked(host: FunctionHost) -> None:
    host.invoke("forger", {"nodes": 12_000})  # 1 MB: within the size cap

    trace, size = stored(host)
    assert count(trace["tree"]) == 5000 and not trace["complete"]
    assert trace["spans"][0]["attributes"]["tuner.trace_cut"] == "call tree over 5000 frames"


def test_a_time_out_of_range_leaves_the_profile_out(host: FunctionHost) -> None:
    host.invoke("forger", {"nodes": 3, "wall_ms": 1e300})

    trace, _ = stored(host)
    assert trace["tree"] is None and not trace["complete"]
    assert "out of range: 1e+300" in trace["spans"][0]["attributes"]["tuner.trace_cut"]


def chain(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"function": "leaf", "children": []}
    for level in range(depth - 1):
        node = {"function": f"f{level}", "wall_ms": 1.0, "children": [node]}
    return node


CAPS = ProfileCaps.of(max_nodes=100, max_depth=10, interval_ms=1.0, duration_ms=1000.0)


def depth_of(node: CallNode | None) -> int:
    return 0 if node is None else 1 + max((depth_of(c) for c in node.children), default=0)


@pytest.mark.parametrize(
    ("profile", "cut"),
    [
        ({"tree": chain(50)}, ["call tree deeper than 10"]),
        ({"tree": {"function": "r", "children": [chain(1)] * 500}}, ["call tree over 100 frames"]),
        (
            {"tree": {"function": "r", "lines": {str(n): 1 for n in range(500)}}},
            ["frames with more than 200 lines"],
        ),
        (
            {"where": [{"function": "f", "file": "x", "line": 1}] * 20},
            ["stack of 20 frames over 10"],
        ),
    ],
)
def test_what_passes_a_cap_is_cut_and_said(profile: dict[str, Any], cut: list[str]) -> None:
    checked = checked_profile({"type": "trace", "complete": True, **profile}, CAPS)

    assert checked.cut == cut and checked.fields["complete"] is False
    tree = checked.fields["tree"]
    if tree is not None:
        assert depth_of(tree) <= 10 and len(tree.lines) <= 200
        assert sum(1 for _ in tree.walk()) + 1 <= 100


@pytest.mark.parametrize(
    "profile",
    [
        {"tree": {"function": "f", "wall_ms": 2500.0}},  # longer than the invocation ran
        {"tree": {"function": "f", "samples": 10**9}},
        {"cpu_ms": float("inf")},
        {"memory": {"peak_mb": 10, "need_mb": 1e300}},
        {"tree": {"function": "f", "line": -1}},
        {"tree": {"function": 5}},
    ],
)
def test_a_number_out_of_range_leaves_the_whole_profile_out(profile: dict[str, Any]) -> None:
    checked = checked_profile({"type": "trace", **profile}, CAPS)

    assert checked.fields == {} and checked.cut[0].startswith("profile left out")


def test_a_plausible_profile_is_kept_whole() -> None:
    checked = checked_profile({"type": "trace", "complete": True, "tree": chain(10)}, CAPS)

    assert checked.cut == [] and checked.fields["complete"] is True
    assert depth_of(checked.fields["tree"]) == 10


class CountingStore(TraceStore):
    """A trace store that counts the files it parses."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.parsed = 0

    def read(self, path: Path) -> Trace | None:
        self.parsed += 1
        return super().read(path)


def test_a_cycle_parses_each_stored_trace_once_and_holds_one_tree(tmp_path: Path) -> None:
    tracing = Tracing(tmp_path / "traces", TracingSpec())
    store = tracing.store = CountingStore(tmp_path / "traces")
    tree = CallNode(
        Frame("handler", "h.py", 1),
        1.0,
        1.0,
        1,
        children=(CallNode(Frame("f", "h.py", 2), 1.0, 1.0, 1),),
    )
    for index, seconds in enumerate([0.1, 0.9, 0.3]):  # the second one is the slowest
        span = f"{index:016x}"
        store.save(
            Trace("a" * 32, span, "f", 100.0 + index, 100.0 + index + seconds, "ok", tree=tree)
        )
    traces = StoredTraces(tracing, longest_s=300)

    first = traces.window(["f"], 100.0, 110.0)["f"]
    again = traces.window(["f"], 100.0, 110.0)["f"]

    assert [t.span_id for t in first if t.tree is not None] == ["0000000000000001"]
    assert [t.span_id for t in again if t.tree is not None] == ["0000000000000001"]
    assert len(first) == len(again) == 3
    assert store.parsed == 3 + 1 + 1  # each file once, and the slowest again each cycle
