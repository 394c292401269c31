"""Every option of every command, given a bad value, ends in a usage error or a clear line.

The table is the whole argument surface, read from the parser itself: a new option is
tested as soon as it exists.  A bad value may be refused by the parser (exit 2), or met
later and said in one line (exit 1 or 2); it never ends in a traceback, and never starts
real work (a daemon, a long simulation) before it is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuner.cli.main import main, parser

LONG = "x" * 5000
BAD_VALUES = {
    "duration": ["banana", "-1", "0", "", "1e999", "nan", "5x"],
    "positive": ["banana", "-1", "0", "", "1e999", "nan"],
    "count": ["banana", "-1", "0", "", "1.5"],
    "int": ["banana", "", "1.5"],
    "address": ["banana", "", "host:99999", ":x"],
    "output_file": ["/nonexistent/folder/out.json", "", "a\0b", LONG + "/out", "/"],
    "choices": ["banana", ""],
    "text": ["banana", "/nonexistent/folder/x", "", "a\0b", LONG],
    "existing_path": ["/nonexistent/folder/x", "", "a\0b", LONG],
}
"""Bad values by the kind of value an option takes: none of them may start any work."""
POSITIONALS = {
    "check": ["/nonexistent/rules.yaml"],
    "why": ["nobody"],
    "profile": ["nobody"],
    "traces": ["nobody"],
}
"""Values for each command's required positional arguments (names nothing that exists)."""


def _options() -> Iterator[tuple[str, str, str]]:
    """(command, option, bad value) for every option of every command that takes a value."""
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command, sp in sub.choices.items():
        for action in sp._actions:
            if action.option_strings and action.nargs != 0:
                kind = "choices" if action.choices else getattr(action.type, "__name__", "text")
                for value in BAD_VALUES[kind]:
                    yield command, action.option_strings[-1], value


OPTIONS = list(_options())


def test_the_surface_is_read_from_the_parser() -> None:
    commands = {c for c, _, _ in OPTIONS}
    assert {"run", "once", "explain", "why", "status", "profile", "simulate"} <= commands
    assert ("run", "--for", "banana") in OPTIONS and ("simulate", "--json", "") in OPTIONS


TRACE_COMMANDS = {"profile", "traces", "topology"}
"""Commands that read the local host's state: they are given one, so that they reach every
option (without a local provider they stop before reading any)."""


@pytest.fixture
def config(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A configuration that serves nothing, with a store of its own; a command that reads
    the local host's traces gets an empty host to read (never started), others watch nothing."""
    providers = "[]"
    if request.node.callspec.params.get("command") in TRACE_COMMANDS:
        (tmp_path / "functions").mkdir()
        providers = (
            f"[{{type: local, functions_dir: {tmp_path / 'functions'}, "
            f"state_dir: {tmp_path / 'state'}}}]"
        )
    path = tmp_path / "tuner.yaml"
    path.write_text(f"providers: {providers}\nstore: {tmp_path / 'tuner.db'}\nhttp: off\n")
    return str(path)


@pytest.mark.parametrize(
    ("command", "option", "value"), OPTIONS, ids=[f"{c} {o} {v[:12]!r}" for c, o, v in OPTIONS]
)
def test_a_bad_value_is_a_usage_error_never_a_traceback(
    command: str, option: str, value: str, config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNER_URL", "http://127.0.0.1:9")  # nothing answers there
    context = [] if option in ("-c", "--config") else _config_of(command, config)
    argv = [command, *POSITIONALS.get(command, []), *context, option, value]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
    assert "Traceback" not in out.getvalue() + err.getvalue()
    assert code in (0, 1, 2), (argv, code)
    if code:
        said = (err.getvalue() or out.getvalue()).strip().splitlines()
        assert said and len(said) <= 8, said  # the usage and a clear line, not a dump
        if "error: argument" in said[-1]:
            assert option in said[-1]  # the parser's refusal names the option


def _config_of(command: str, config: str) -> list[str]:
    """``-c CONFIG`` for commands that read a configuration (so nothing touches ``.tuner/``)."""
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    takes = any("-c" in a.option_strings for a in sub.choices[command]._actions)
    return ["-c", config] if takes else []
