"""The demo's traffic for real, then ``tuner topology``: no edge that is not there.

The demo's functions never call each other.  Most arrive as Poisson traffic, and
``report-builder`` and ``refund-notifier`` fire together on one schedule, every second:
neither kind of traffic may make one function look like another's caller.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tuner.cli.main import main
from tuner.providers.local import Settings, build

DEMO = Path(__file__).resolve().parents[2] / "examples" / "local"
TRUE_EDGES = {
    ("checkout", "payments-api"),
    ("refund-notifier", "payments-api"),
    ("price-lookup", "catalog-db"),
}


class _Clock:
    def now(self) -> float:
        return time.time()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tuner.yaml over the demo's state after 25 s of its traffic."""
    folder = tmp_path_factory.mktemp("demo")
    settings = {
        "type": "local",
        "functions_dir": str(DEMO),
        "state_dir": str(folder / "state"),
        "http_port": None,
        "traffic": True,
    }
    config = folder / "tuner.yaml"
    config.write_text(json.dumps({"providers": [settings], "store": str(folder / "tuner.db")}))
    with build(Settings.model_validate(settings), clock=_Clock()):
        time.sleep(25.0)
    return config


def _edges(config: Path, capsys: pytest.CaptureFixture[str], *source: str) -> list[dict]:
    capsys.readouterr()
    assert main(["topology", "-c", str(config), *source]) == 0
    return list(json.loads(capsys.readouterr().out)["edges"])


@pytest.mark.slow
def test_the_default_topology_of_the_demo_has_only_its_true_edges(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edges = _edges(demo, capsys)
    assert {(e["source"], e["target"]) for e in edges} == TRUE_EDGES
    assert all(e["confidence"] == 1.0 and e["evidence"] in ("trace", "record") for e in edges)


@pytest.mark.slow
def test_the_timing_of_the_demo_makes_no_function_a_caller(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edges = _edges(demo, capsys, "--source", "timing")
    assert {(e["source"], e["target"]) for e in edges} == TRUE_EDGES
    assert {e["evidence"] for e in edges} == {"record"}  # the host saw every call
    calls = {(e["source"], e["target"]): e["calls"] for e in edges}
    assert calls[("price-lookup", "catalog-db")] >= 40  # 4 a second, most of 25 s
    assert calls[("refund-notifier", "payments-api")] >= 15  # once a second
