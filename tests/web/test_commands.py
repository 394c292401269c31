"""tuner why, tuner status and tuner explain --facts: from the daemon, else from the store."""

from __future__ import annotations

import json
import re
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
    assert f"facts from the store {world.tuner.store.path} as of" in out
    assert "(no daemon answered)" in out and "oom              FIRED" in out
    # a healthy function, with no decision at all, is known to the store too
    assert main(["why", "healthy", "-c", config, "--url", _closed_url()]) == 0
    assert "oom              DID NOT FIRE" in capsys.readouterr().out
    assert main(["why", "helthy", "-c", config, "--url", _closed_url()]) == 1
    assert "no function 'helthy' (did you mean 'healthy'" in capsys.readouterr().out


def test_the_daemon_of_another_configuration_is_never_asked(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.cycle()
    other = tmp_path / "other.yaml"  # another store; its address is where the world's daemon is
    other.write_text(f"store: {tmp_path / 'other.db'}\nhttp: {world.url.removeprefix('http://')}\n")
    assert main(["status", "-c", str(other)]) == 0
    out = capsys.readouterr().out
    assert "no functions known yet" in out and "keeps another store" in out
    assert main(["why", "oomer", "-c", str(other)]) == 1
    assert "no function 'oomer'" in capsys.readouterr().out
    mine = tmp_path / "mine.yaml"  # the world's own store at that address: asked
    mine.write_text(f"store: {world.tuner.store.path}\nhttp: {world.url.removeprefix('http://')}\n")
    assert main(["status", "-c", str(mine)]) == 0
    assert f"from the running daemon at {world.url}" in capsys.readouterr().out


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
    # without a daemon: every function the store has seen, healthy ones included
    config = _config(world, tmp_path)
    assert main(["status", "-c", config, "--url", _closed_url(), "--json"]) == 0
    stored = {r["name"]: r["state"] for r in json.loads(capsys.readouterr().out)}
    daemon = {r["name"]: r["state"] for r in world.json("/api/fleet")["rows"]}
    assert stored == daemon and stored["healthy"] == "healthy" and stored["oomer"] == "verifying"
    assert main(["status", "-c", config, "--url", _closed_url(), "--state", "no data"]) == 0
    assert "fake:quiet" in capsys.readouterr().out
    assert main(["status", "-c", config, "--url", _closed_url(), "--state", "rolled back"]) == 0
    assert "no function is 'rolled back'" in capsys.readouterr().out


def test_explain_facts_shows_what_each_decision_rested_on(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.cycle()
    config = _config(world, tmp_path)
    assert main(["explain", "oomer", "--facts", "-c", config]) == 0
    out = capsys.readouterr().out
    assert "when: ooms > 0.0" in out and "    ooms" in out and "peak_memory_mb=128" in out
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out), "times are ISO 8601 UTC"
    assert not re.search(r"\b(True|False|None)\b|\{'", out), "values are never Python reprs"
    assert main(["explain", "oomer", "--facts", "--json", "-c", config]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert (
        record["condition_facts"] == {"extra.probe_pending": None, "ooms": 6.0}
        and record["facts"]["memory_mb"] == 128.0
    )


def test_explain_of_a_function_left_alone_says_so(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.cycle()
    config = _config(world, tmp_path)
    assert main(["explain", "healthy", "-c", config]) == 0
    assert "fake:healthy: no decisions: tuner left it alone" in capsys.readouterr().out
    assert main(["explain", "helthy", "-c", config]) == 1
    assert "no function 'helthy' (did you mean 'healthy'" in capsys.readouterr().err


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
