"""What the command line prints: JSON alone on stdout, UTC times, usage errors, grouped rows."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests.safety.file_provider import FileProvider
from tests.unit.test_loop import world
from tuner import __version__
from tuner.cli.main import main, parser
from tuner.daemon import wiring
from tuner.store.audit import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """``tuner once`` points the logs at this test's captured stderr: undo that after."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """A store with one cycle of the loop tests' world: an OOM fixed, an outage of two."""
    daemon, _, _, _ = world(store=SqliteStore(tmp_path / "tuner.db"))
    daemon.run_cycle()
    daemon.store.close()
    config = tmp_path / "tuner.yaml"
    config.write_text("store: tuner.db\n", encoding="utf-8")
    return config


def test_once_json_prints_only_json_and_the_messages_go_to_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    window = {"invocations": 100, "errors": 5, "ooms": 5, "peak_memory_mb": 250.0}
    FileProvider.create(state, {"resize": 256}, window)
    config = tmp_path / "tuner.yaml"
    config.write_text(
        f"store: tuner.db\nrules: [{ROOT / 'rules' / 'default.yaml'}]\n"
        "providers: [{type: local}]\nchannels: {console: {type: console}}\n",
        encoding="utf-8",
    )
    real = wiring.build
    monkeypatch.setattr(wiring, "build", functools.partial(real, providers=[FileProvider(state)]))

    assert main(["once", "--json", "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    [decision] = json.loads(out)  # nothing but the JSON on stdout
    assert (decision["function"], decision["state"]) == ("file:resize", "applied")
    assert ISO_UTC.match(decision["time"])
    assert "resize" in err and "memory" in err  # the console channel's message
    assert "-----" in err  # as the console channel frames a message


def test_explain_rows_are_utc_and_one_message_for_an_outage_is_one_row(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "-c", str(history)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert all(ISO_UTC.match(row.split()[0]) for row in rows)
    outage = [row for row in rows if "dependency-down" in row]
    assert len(outage) == 1
    assert "dependency:orders-db (2 functions: down-a, down-b)" in outage[0]

    assert main(["explain", "--json", "-c", str(history)]) == 0
    records = json.loads(capsys.readouterr().out)
    grouped = [r for r in records if r["rule"] == "dependency-down"]
    assert [r["function"] for r in grouped] == ["fake:down-a", "fake:down-b"]
    assert {r["group"] for r in grouped} == {"dependency:orders-db"}
    assert all(ISO_UTC.match(r["time"]) for r in records)


def test_explain_filters_by_function_before_it_limits(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "--json", "--limit", "1", "-c", str(history)]) == 0
    [newest] = json.loads(capsys.readouterr().out)
    assert newest["function"] != "fake:oomer"  # the oomer's decision is not the newest
    assert main(["explain", "oomer", "--json", "--limit", "1", "-c", str(history)]) == 0
    [mine] = json.loads(capsys.readouterr().out)
    assert (mine["function"], mine["rule"]) == ("fake:oomer", "oom")


def test_explain_of_an_unknown_function_says_so(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "nosuch", "-c", str(history)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == "tuner explain: no function 'nosuch'\n"
    assert main(["explain", "oomre", "-c", str(history)]) == 1
    assert "no function 'oomre' (did you mean 'oomer'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "--for", "5 minutes"], "argument --for: not a duration: '5 minutes'"),
        (["run", "--interval", "5min"], "argument --interval: not a duration: '5min'"),
        (["run", "--for", "0s"], "argument --for: not a positive duration: '0s'"),
        (["explain", "--limit", "-3"], "argument --limit: not a whole number of 1 or more"),
    ],
)
def test_bad_option_values_are_usage_errors(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "usage: tuner" in err and "Traceback" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"tuner {__version__}\n"


def test_every_option_has_help_text() -> None:
    root = parser()
    parsers = [root]
    for action in root._actions:
        if action.choices and isinstance(action.choices, dict):
            parsers.extend(action.choices.values())
    missing = [
        f"{p.prog} {'/'.join(a.option_strings) or a.dest}"
        for p in parsers
        for a in p._actions
        if a.help is None and a.dest not in ("help", "command")
    ]
    assert missing == []


def test_a_configuration_without_providers_says_what_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tuner.yaml"
    config.write_text("store: tuner.db\n", encoding="utf-8")
    (tmp_path / "tuner.db").write_bytes(b"not a store")  # stop right after the configuration
    assert main(["once", "-c", str(config)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        f"{config}: no 'providers': running the embedded local host "
        "(add 'providers:' to watch AWS, Kubernetes or your own functions)"
    )
