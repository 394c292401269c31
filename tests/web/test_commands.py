"""tuner why, tuner status and tuner explain --facts: from the daemon, else from the store."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests.web.conftest import World
from tuner.cli.main import main


def _closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _config(world: World, tmp_path: Path) -> str:
    path = tmp_path / "tuner.yaml"
    path.write_text(f"store: {world.tuner.store.path}\nrules: [{world.tuner.config.rules[0]}]\n")
    return str(path)


def test_why_asks_the_running_daemon(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.cycle()
    assert main(["why", "healthy", "--url", world.url]) == 0
    out = capsys.readouterr().out
    assert "fake:healthy: 20 invocations, facts from the running daemon" in out
    assert "oom              DID NOT FIRE: does not hold: ooms > 0.0" in out
    assert "does not hold ooms > 0.0   [ooms = 0]" in out
    assert main(["why", "oomer", "oom", "--url", world.url, "--json"]) == 0
    [rule] = json.loads(capsys.readouterr().out)["rules"]
    assert rule["rule"] == "oom" and rule["verdict"] == "fired"
    assert main(["why", "nobody", "--url", world.url]) == 1
    assert "no function 'nobody'" in capsys.readouterr().out


def test_why_falls_back_to_the_facts_in_the_store(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.cycle()
    config = _config(world, tmp_path)
    assert main(["why", "oomer", "-c", config, "--url", _closed_url()]) == 0
    out = capsys.readouterr().out
    assert "facts from the facts recorded with the decision" in out
    assert "oom              FIRED" in out
    assert main(["why", "healthy", "-c", config, "--url", _closed_url()]) == 1
    assert "holds no facts for 'healthy'" in capsys.readouterr().out


def test_status_prints_the_fleet(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.cycle()
    assert main(["status", "--url", world.url]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("fake:")}
    assert "outage" in lines["fake:down-a"] and "no data" in lines["fake:quiet"]
    assert "memory_mb 128 -> 256 (oom, applied" in lines["fake:oomer"]
    assert main(["status", "--url", world.url, "--json", "--state", "outage"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["down-a", "down-b"]
    # without a daemon: what the decisions say
    assert main(["status", "-c", _config(world, tmp_path), "--url", _closed_url()]) == 0
    out = capsys.readouterr().out
    assert "from the store" in out and "fake:oomer" in out and "verifying" in out


def test_explain_facts_shows_what_each_decision_rested_on(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.cycle()
    config = _config(world, tmp_path)
    assert main(["explain", "oomer", "--facts", "-c", config]) == 0
    out = capsys.readouterr().out
    assert "when: ooms > 0.0" in out and "    ooms" in out and "peak_memory_mb=128" in out
    assert main(["explain", "oomer", "--facts", "--json", "-c", config]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert (
        record["condition_facts"] == {"extra.probe_pending": None, "ooms": 6.0}
        and record["facts"]["memory_mb"] == 128.0
    )


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """``tuner run`` configures structlog for its stream: put the test session's back after."""
    saved = structlog.get_config()
    try:
        yield
    finally:
        structlog.configure(**saved)


@pytest.mark.usefixtures("logging_restored")
def test_run_says_when_it_cannot_serve_where_it_was_asked_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tuner.yaml"
    config.write_text(f"providers: []\nstore: {tmp_path / 'tuner.db'}\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["run", "-c", str(config), "--for", "1s", "--http", f"127.0.0.1:{port}"]) == 2
    assert (
        f"--http: cannot listen on 127.0.0.1:{port}: Address already in use"
        in capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        main(["run", "-c", str(config), "--http", "nonsense"])
    assert "use HOST:PORT (e.g. 127.0.0.1:8780) or off, not 'nonsense'" in capsys.readouterr().err
