"""The example application's run, end to end: a chatty pair fused, a far dependency's replica.

Runs ``tuner run -c examples/app/tuner.yaml --for 60s`` for real (the README's command)
over a copy of the example, and asserts from the store, the host's records and the
printed summary.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.demo_run import tuner_run
from tuner.domain.lifecycle import State
from tuner.domain.model import Knob
from tuner.store.audit import SqliteStore

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The store and the printed output of a 60 s run of the example application."""
    cwd = tmp_path_factory.mktemp("app-run")
    shutil.copytree(EXAMPLES / "app", cwd / "examples" / "app")
    out = tuner_run(cwd, "-c", "examples/app/tuner.yaml", "--for", "60s", "--http", "off")
    return cwd / ".tuner" / "app" / "tuner.db", out


def applied(db: Path, name: str, knob: Knob) -> list:  # type: ignore[type-arg]
    store = SqliteStore(db)
    try:
        found = store.decisions(limit=100_000)
    finally:
        store.close()
    return [
        d
        for d in found
        if d.ref.name == name and d.applied and d.change is not None and d.change.knob is knob
    ]


def test_sharpen_is_fused_into_resize_and_resize_gets_faster(run: tuple[Path, str]) -> None:
    db, out = run
    [fusion] = applied(db, "sharpen", Knob.FUSED)

    assert fusion.rule == "chatty-pair" and fusion.change.after == 1
    assert fusion.state is State.IMPROVED
    assert "fuse into resize" in fusion.summary and "calls/min" in fusion.summary
    row = next(line for line in out.splitlines() if line.startswith("sharpen "))
    before, after = (float(x) for x in row.split("caller_p95_ms")[1].split("->"))
    assert after < before


def test_index_reads_the_near_replica_and_its_p95_falls(run: tuple[Path, str]) -> None:
    db, out = run
    [switch] = applied(db, "index", Knob.NEAR_REPLICA)

    assert switch.rule == "data-distance" and switch.change.after == 1
    assert switch.state is State.IMPROVED
    assert "read from search-db-replica (1 ms away instead of 50 ms)" in switch.summary
    row = next(line for line in out.splitlines() if line.startswith("index "))
    before, after = (float(x) for x in row.split("dependency_latency_p95_ms")[1].split("->"))
    assert before > 50 > after
