"""The example application for real, then ``tuner topology``, ``profile`` and ``traces`` on it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tuner.cli.main import main
from tuner.providers.local import Settings, build
from tuner.trace.folded import parse_folded

APP = Path(__file__).resolve().parents[2] / "examples" / "app"
TRUE_EDGES = {
    ("upload", "object-store"),
    ("upload", "resize"),
    ("upload", "index"),
    ("index", "search-db"),
    ("resize", "sharpen"),
}
EVENTS = [  # photo-sized, so that resize runs long enough to be sampled on a busy machine
    {"name": "beach.jpg", "width": 512, "height": 384, "tags": ["sea", "sand"]},
    {"name": "city.jpg", "width": 640, "height": 320, "tags": ["street"]},
]


class _Clock:
    def now(self) -> float:
        import time

        return time.time()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tuner.yaml over the example application after six uploads."""
    folder = tmp_path_factory.mktemp("app")
    config = folder / "tuner.yaml"
    settings = {
        "type": "local",
        "functions_dir": str(APP),
        "state_dir": str(folder / "state"),
        "http_port": None,
        "traffic": False,
    }
    config.write_text(json.dumps({"providers": [settings], "store": str(folder / "tuner.db")}))
    provider = build(Settings.model_validate(settings), clock=_Clock())
    with provider:
        for index in range(6):
            result = provider.host.invoke("upload", EVENTS[index % 2])
            assert result.outcome == "ok", result.error
    return config


def test_topology_of_the_example_app_has_the_true_edges_from_its_traces(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["topology", "-c", str(app)]) == 0  # traces first, where there are any
    data = json.loads(capsys.readouterr().out)
    assert {(e["source"], e["target"]) for e in data["edges"]} == TRUE_EDGES
    kinds = {n["id"]: n["kind"] for n in data["nodes"]}
    assert kinds == {
        "upload": "function",
        "resize": "function",
        "index": "function",
        "sharpen": "function",
        "object-store": "dependency",
        "search-db": "dependency",
    }
    calls = {(e["source"], e["target"]): e["calls"] for e in data["edges"]}
    assert calls[("upload", "resize")] == 6 and calls[("index", "search-db")] == 15
    assert calls[("resize", "sharpen")] == 3 * 12 + 3 * 8  # one call per thumbnail row
    assert all(e["evidence"] == "trace" and e["error_rate"] == 0.0 for e in data["edges"])


def test_without_traces_the_records_give_the_dependency_calls_and_timing_the_rest(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["topology", "-c", str(app), "--source", "timing"]) == 0
    edges = {(e["source"], e["target"]): e for e in json.loads(capsys.readouterr().out)["edges"]}
    assert set(edges) <= TRUE_EDGES  # timing may miss a call in so few, never invent one
    for pair in (("upload", "object-store"), ("index", "search-db")):
        assert edges[pair]["evidence"] == "record" and edges[pair]["confidence"] == 1.0
    assert edges[("index", "search-db")]["calls"] == 15
    for pair in (("upload", "resize"), ("upload", "index")):
        if pair in edges:
            assert edges[pair]["evidence"] == "timing" and 0.9 <= edges[pair]["confidence"] < 1.0


def test_profile_shows_the_nested_functions(
    app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folded_path = tmp_path / "resize.folded"
    assert (
        main(
            [
                "profile",
                "resize",
                "-c",
                str(app),
                "--kind",
                "wall",
                "--format",
                "folded",
                "-o",
                str(folded_path),
            ]
        )
        == 0
    )
    stacks = parse_folded(folded_path.read_text())
    frames = {frame for stack in stacks for frame in stack.split(";")}
    assert {"handler (handler.py:27)", "scale (handler.py:11)"} <= frames
    assert "scale.<locals>.block_mean (handler.py:14)" in frames  # a nested function
    table = capsys.readouterr().out
    assert "share" in table and "handler.py" in table

    svg_path = tmp_path / "upload.svg"
    assert main(["profile", "upload", "-c", str(app), "-o", str(svg_path)]) == 0
    names = {
        g.get("data-name")
        for g in ElementTree.parse(svg_path).getroot().iter("{http://www.w3.org/2000/svg}g")
    }
    assert "checksum (handler.py:4)" in names


def test_traces_lists_recent_traces_with_their_outcome(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["traces", "index", "-c", str(app), "--json"]) == 0
    traces = json.loads(capsys.readouterr().out)
    assert len(traces) == 6 and {t["outcome"] for t in traces} == {"ok"}
    assert all(t["parent_span_id"] for t in traces)  # called from upload
    assert main(["traces", "report-builder", "-c", str(app)]) == 2
    assert "no traces of 'report-builder'" in capsys.readouterr().err
