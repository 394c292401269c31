"""Decisions name the traces their evidence rests on: in the decision, explain and messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog
from local_world import WallClock, traced_host

from tuner.cli.explaining import decision_line
from tuner.cli.main import main
from tuner.daemon.loop import Daemon, DaemonSettings
from tuner.decisions.documents import decision_json
from tuner.engine import parse_rules
from tuner.providers.local.provider import LocalProvider
from tuner.store.audit import SqliteStore

CANVAS = (
    "PAGE = 1024 * 1024\n"
    "\n"
    "def handler(event, context):\n"
    "    canvas = bytearray(event['pages'] * PAGE)\n"
    "    return len(canvas)\n"
)
RULES = """
version: 1
rules:
  - name: oom
    when: ooms > 0.0
    actions:
      - action: more-memory
"""


def test_an_oom_decision_names_its_traces_and_explain_finds_it_by_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "app" / "functions" / "canvas"
    folder.mkdir(parents=True)
    (folder / "function.yaml").write_text("memory_mb: 96\ntimeout_s: 5\ntracing: {mode: full}\n")
    (folder / "handler.py").write_text(CANVAS)
    state = tmp_path / "state"
    host = traced_host(tmp_path / "app", state, max_workers_per_function=1)
    provider = LocalProvider(host, WallClock(), http_port=None, traffic=False)
    store = SqliteStore(tmp_path / "tuner.db")
    provider.start()
    try:
        for _ in range(2):
            assert host.invoke("canvas", {"pages": 150}).outcome == "oom"
            assert host.invoke("canvas", {"pages": 1}).outcome == "ok"
        daemon = Daemon(
            providers=[provider],
            rules=parse_rules(RULES, "oom.yaml"),
            store=store,
            settings=DaemonSettings(window_s=30.0),
        )
        [decision] = daemon.run_cycle().decisions
        assert host.tracing is not None
        traces = host.tracing.store.traces("canvas")
    finally:
        provider.close()
        store.close()
    assert len(decision.trace_ids) == 4 and set(decision.trace_ids) == {t.trace_id for t in traces}
    # the trace the evidence cites comes first: one that failed to allocate
    [failed] = [t for t in traces if t.trace_id == decision.trace_ids[0]]
    assert failed.outcome == "oom" and failed.memory and failed.memory.failed
    evidence = decision.facts["evidence"]
    assert isinstance(evidence, dict)
    assert f"(trace {failed.trace_id})" in evidence["allocation_site"]
    assert f"Traces behind this: {', '.join(decision.trace_ids)}" in decision.advice
    assert "(tuner traces canvas)" in decision.advice
    record = decision_json(decision)
    assert record["trace_ids"] == list(decision.trace_ids)
    assert record["flame_graph"] == "tuner profile canvas --kind memory"
    assert decision_line(decision).endswith(
        f"[traces {' '.join(decision.trace_ids)}: tuner profile canvas --kind memory]"
    )

    config = tmp_path / "tuner.yaml"
    config.write_text("store: tuner.db\n", encoding="utf-8")
    capsys.readouterr()  # the host's logs
    try:
        assert main(["explain", "--json", "--trace", failed.trace_id[:10], "-c", str(config)]) == 0
        [found] = json.loads(capsys.readouterr().out)
        assert found["id"] == decision.id
        assert main(["explain", "--trace", "0" * 32, "-c", str(config)]) == 1
        assert "no decision rests on trace" in capsys.readouterr().err
    finally:
        structlog.reset_defaults()
