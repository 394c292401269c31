"""Profiles from traces: folded stacks, SVG flame graphs, speedscope files, stored traces."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from tuner.trace.flamegraph import render_svg
from tuner.trace.folded import fold, hottest, parse_folded, render_folded
from tuner.trace.model import (
    AllocationSite,
    CallNode,
    FailedAllocation,
    Frame,
    MemoryProfile,
    Span,
    Trace,
)
from tuner.trace.speedscope import render_speedscope
from tuner.trace.storing import TraceStore

SCHEMA = json.loads((Path(__file__).parent / "data" / "speedscope-schema.json").read_text())
SVG = "{http://www.w3.org/2000/svg}"


def node(function: str, line: int, wall: float, *children: CallNode, cpu: float = 0.0) -> CallNode:
    return CallNode(Frame(function, "handler.py", line), wall, cpu, children=children)


def sample_trace(start: float = 1000.0, trace_id: str = "ab" * 16) -> Trace:
    """handler (100 ms: 10 own) -> parse (30 ms) and render (60 ms: 20 own) -> encode (40 ms)."""
    tree = CallNode(
        Frame("<invocation>", "", 0),
        100.0,
        90.0,
        children=(
            node(
                "handler",
                10,
                100.0,
                node("parse", 3, 30.0, cpu=30.0),
                node("render", 6, 60.0, node("encode", 8, 40.0, cpu=40.0), cpu=60.0),
                cpu=90.0,
            ),
        ),
    )
    memory = MemoryProfile(
        peak_mb=60.0,
        baseline_mb=12.0,
        allocated_peak_mb=48.0,
        in_use_mb=40.0,
        limit_mb=128.0,
        sites=(AllocationSite("handler.py", 7, 40.0, 3, ("handler.py:12", "handler.py:7")),),
        failed=FailedAllocation(
            "handler.py", 9, "render", "buf = bytearray(n)", "bytearray", 100.0, ("n",)
        ),
        need_mb=152.0,
    )
    return Trace(
        trace_id=trace_id,
        span_id="cd" * 8,
        function="report",
        start=start,
        end=start + 0.1,
        outcome="oom",
        spans=(Span("cd" * 8, "", "report", "function", start, start + 0.1),),
        tree=tree,
        memory=memory,
    )


def test_folded_stacks_of_a_known_tree_are_exact() -> None:
    trace = sample_trace()
    assert dict(fold([trace], "wall")) == {
        "report;handler (handler.py:10)": 10_000,
        "report;handler (handler.py:10);parse (handler.py:3)": 30_000,
        "report;handler (handler.py:10);render (handler.py:6)": 20_000,
        "report;handler (handler.py:10);render (handler.py:6);encode (handler.py:8)": 40_000,
    }
    cpu = fold([trace, trace], "cpu")  # two traces add up
    assert cpu["report;handler (handler.py:10);render (handler.py:6)"] == 40_000
    assert "report;handler (handler.py:10)" not in cpu  # no own CPU time
    text = render_folded(fold([trace], "wall"))
    assert text.splitlines()[0] == "report;handler (handler.py:10) 10000"
    assert parse_folded(text) == dict(fold([trace], "wall"))


def test_memory_folds_the_sites_and_the_failed_allocation() -> None:
    assert dict(fold([sample_trace()], "memory")) == {
        "report;handler.py:12;handler.py:7": 40 * 1024,
        "report;MemoryError: bytearray (handler.py:9)": 100 * 1024,
    }


def test_malformed_folded_text_names_its_line() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_folded("a;b 1\nno-weight-here\n")
    with pytest.raises(ValueError, match="unknown profile kind"):
        fold([], "heap")


def test_hottest_paths_rank_by_weight() -> None:
    [first, second] = hottest(fold([sample_trace()], "wall"), limit=2)
    assert first.stack[-1] == "encode (handler.py:8)" and first.share == pytest.approx(0.4)
    assert second.stack[-1] == "parse (handler.py:3)"


def test_svg_flame_graph_is_well_formed_and_names_every_frame() -> None:
    svg = render_svg(fold([sample_trace()], "wall"), title="report <wall>", unit="µs")
    root = ElementTree.fromstring(svg.encode())
    assert root.tag == f"{SVG}svg"
    frames = root.findall(f".//{SVG}g[@class='frame']")
    names = {g.get("data-name") for g in frames}
    assert names == {
        "all",
        "report",
        "handler (handler.py:10)",
        "parse (handler.py:3)",
        "render (handler.py:6)",
        "encode (handler.py:8)",
    }
    titles = {g.find(f"{SVG}title").text for g in frames}  # type: ignore[union-attr]
    assert "encode (handler.py:8) (40,000 µs, 40.00%)" in titles
    widths = {g.get("data-name"): float(g.find(f"{SVG}rect").get("width")) for g in frames}  # type: ignore[union-attr, arg-type]
    assert widths["encode (handler.py:8)"] == pytest.approx(widths["all"] * 0.4, rel=1e-3)
    assert root.find(f"{SVG}script") is not None and "search()" in svg  # searchable
    assert root.find(f".//{SVG}text[@id='search']") is not None


def test_speedscope_file_matches_the_file_format_schema() -> None:
    folded = fold([sample_trace()], "wall")
    document = render_speedscope(folded, name="report", unit="microseconds")
    jsonschema.validate(document, SCHEMA)
    [profile] = document["profiles"]
    frames = document["shared"]["frames"]
    stacks = {
        ";".join(
            "report"
            if frames[i]["name"] == "report"
            else f"{frames[i]['name']} ({frames[i]['file']}:{frames[i]['line']})"
            for i in sample
        ): weight
        for sample, weight in zip(profile["samples"], profile["weights"], strict=True)
    }
    assert stacks == dict(folded)
    assert profile["endValue"] == sum(folded.values())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**document, "profiles": [{**profile, "unit": "parsecs"}]}, SCHEMA)


def test_store_keeps_a_bounded_ring_per_function(tmp_path: Path) -> None:
    store = TraceStore(tmp_path, keep=2)
    for index in range(4):
        store.save(sample_trace(start=1000.0 + index, trace_id=f"{index:032x}"))
    kept = store.traces("report")
    assert [t.trace_id for t in kept] == [f"{2:032x}", f"{3:032x}"]
    assert kept[-1] == sample_trace(start=1003.0, trace_id=f"{3:032x}")  # JSON round trip
    assert [t.start for t in store.traces("report", since=1003.0)] == [1003.0]
    with pytest.raises(ValueError, match="not a function name"):
        store.save(replace(sample_trace(), function="../x"))
