"""``tuner simulate``: the real loop on a simulated fleet, scored against the optimum."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from tuner.cli.main import main


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    """The command configures logging for the process: put the defaults back after it."""
    yield
    structlog.reset_defaults()


def simulate(tmp_path: Path, name: str, *args: str) -> dict:
    out = tmp_path / f"{name}.json"
    assert main(["simulate", "--functions", "40", "--days", "1", "--json", str(out), *args]) == 0
    result: dict = json.loads(out.read_text())
    return result


def test_simulate_reports_what_tuner_did_and_how_it_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tuned = simulate(tmp_path, "tuned")
    printed = capsys.readouterr().out
    assert "simulated 40 functions for 1 days (96 cycles" in printed
    assert "OOM episodes:" in printed and "cost over the last day" in printed
    applied = {(d["rule"], d["action"]) for d in tuned["decisions"] if d["outcome"] == "applied"}
    assert ("oom", "more-memory") in applied
    assert any("needs" in e for e in tuned["examples"])  # sized from evidence, and says so
    score = tuned["score"]
    assert score["oom_fixed"] == score["ooms"] > 0
    assert score["oom_one_step_fraction"] >= 0.8 and score["synthetic_invocations"] == 0
    probes = score["probe_invocations"]
    assert probes > 0 and f"re-run once at a higher limit): {probes}," in printed

    empty = tmp_path / "none.yaml"
    empty.write_text("version: 1\nrules: []\n")
    untouched = simulate(tmp_path, "untouched", "--rules", str(empty))
    assert untouched["decisions"] == [] and untouched["score"]["changes"] == 0
    assert score["failed_invocations"] < untouched["score"]["failed_invocations"] / 5


def test_simulate_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = simulate(tmp_path, "a", "--seed", "9", "--days", "0.25")
    b = simulate(tmp_path, "b", "--seed", "9", "--days", "0.25")
    assert a["score"] == b["score"] and a["decisions"] == b["decisions"]
