"""The README's demo for real, then ``tuner topology``: no edge that is not there.

The demo's functions never call each other.  Most arrive as Poisson traffic, and
``report-builder`` and ``refund-notifier`` fire together on one schedule, every second:
neither kind of traffic may make one function look like another's caller, before or
after the daemon changed them (a split's parts, a cache that cuts the calls).
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.demo_run import DemoRun
from tuner.cli.main import main

TRUE_EDGES = {
    ("checkout", "payments-api"),
    ("refund-notifier", "payments-api"),
    ("price-lookup", "catalog-db"),
}


def _edges(
    demo_run: DemoRun,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *source: str,
) -> list[dict]:
    """The edges ``tuner topology`` prints where the demo ran (its default configuration)."""
    monkeypatch.chdir(demo_run.cwd)
    capsys.readouterr()
    assert main(["topology", *source]) == 0
    return list(json.loads(capsys.readouterr().out)["edges"])


@pytest.mark.slow
def test_the_default_topology_of_the_demo_has_only_its_true_edges(
    demo_run: DemoRun, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    edges = _edges(demo_run, capsys, monkeypatch)
    assert {(e["source"], e["target"]) for e in edges} == TRUE_EDGES
    assert all(e["confidence"] == 1.0 and e["evidence"] in ("trace", "record") for e in edges)


@pytest.mark.slow
def test_the_timing_of_the_demo_makes_no_function_a_caller(
    demo_run: DemoRun, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    edges = _edges(demo_run, capsys, monkeypatch, "--source", "timing")
    assert {(e["source"], e["target"]) for e in edges} == TRUE_EDGES
    assert {e["evidence"] for e in edges} == {"record"}  # the host saw every call
    calls = {(e["source"], e["target"]): e["calls"] for e in edges}
    assert calls[("price-lookup", "catalog-db")] >= 20  # 4 a second until its cache is on
    assert calls[("refund-notifier", "payments-api")] >= 30  # once a second for 45 s
