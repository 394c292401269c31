"""Hostile and broken YAML input: size cap, alias bombs, encodings, reloads, check across files."""

from __future__ import annotations

import textwrap
import tracemalloc
from pathlib import Path

import pytest

from tests.unit.test_rulefiles import GOOD
from tuner.cli.main import main
from tuner.daemon.reloading import RuleSource
from tuner.domain.errors import ConfigError
from tuner.engine import load_rules
from tuner.engine.yamlfiles import load_yaml, read_text


def alias_bomb(levels: int = 9) -> str:
    """The 'billion laughs' document: 9 levels of 9 aliases each, 9**9 strings when expanded."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghijklmnop"[:levels]
    for prev, name in zip(names, names[1:], strict=False):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def problem(text: str, source: str = "rules/team.yaml") -> str:
    with pytest.raises(ConfigError) as err:
        load_yaml(text, source)
    (p,) = err.value.problems
    return str(p)


def test_an_alias_bomb_is_refused_before_anything_walks_it() -> None:
    bomb = alias_bomb()
    assert len(bomb) < 530
    tracemalloc.start()
    try:
        message = problem(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message.startswith("rules/team.yaml:6: invalid YAML: aliases expand to more than")
    assert peak < 5_000_000  # bytes: the expansion (9**9 nodes) never happens


def test_ordinary_anchors_and_merge_keys_still_load() -> None:
    text = textwrap.dedent(
        """\
        base: &base {margin: 0.2, step: 2}
        one: {<<: *base, step: 3}
        list: &l [1, 2, 3]
        again: *l
        """
    )
    data, lines = load_yaml(text, "x.yaml")
    assert data["one"] == {"margin": 0.2, "step": 3}
    assert data["again"] == [1, 2, 3]
    assert lines[("again",)] == 4


def test_an_alias_that_contains_itself_is_located() -> None:
    assert problem("a: &a [1, *a]\n") == (
        "rules/team.yaml:1: invalid YAML: an alias refers to a node that contains it"
    )


def test_nesting_too_deep_for_the_parser_is_a_problem_not_a_crash() -> None:
    assert problem("a: " + "[" * 1000 + "]" * 1000 + "\n").endswith("nested too deeply")


def test_a_file_over_the_size_cap_is_refused_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(50_000_000)  # sparse: 50 MB by its size, nothing to read
    with pytest.raises(ConfigError) as err:
        read_text(big)
    assert str(err.value) == (
        f"{big}: file is 50,000,000 bytes, larger than the limit of 1,000,000 "
        "(TUNER_MAX_FILE_BYTES raises it)"
    )
    small = tmp_path / "rules.yaml"
    small.write_text(GOOD)
    monkeypatch.setenv("TUNER_MAX_FILE_BYTES", "20")
    with pytest.raises(ConfigError, match="larger than the limit of 20"):
        load_rules([small])
    monkeypatch.setenv("TUNER_MAX_FILE_BYTES", "2000")
    assert len(load_rules([small])) == 1


def test_bytes_that_are_not_utf8_are_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "team.yaml"
    bad.write_bytes(GOOD.encode().replace(b"ooms > 0.0", b"ooms > 0.0 # caf\xe9"))
    assert main(["check", str(bad)]) == 2
    assert capsys.readouterr().err == f"{bad}:3: not UTF-8: byte 0xe9 at column 27\n"
    with pytest.raises(ConfigError, match=r"team.yaml:3: not UTF-8"):
        load_rules([bad])
    cfg = tmp_path / "tuner.yaml"
    cfg.write_bytes(b"mode: apply\n\xff\xfeinterval: 30s\n")
    assert main(["once", "-c", str(cfg)]) == 2
    assert capsys.readouterr().err == f"{cfg}:2: not UTF-8: byte 0xff at column 1\n"


def test_a_reload_of_hostile_files_keeps_the_rules_in_force(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(GOOD)
    source = RuleSource([tmp_path])
    for hostile in (alias_bomb().encode(), b"rules: \xff\n", b"x" * 1_000_001):
        rules.write_bytes(hostile)
        assert source.reload(force=True) is False
        assert source.last_error is not None
        assert [r.name for r in source().rules] == ["oom"]
    rules.write_text(GOOD.replace("name: oom", "name: oom-two"))
    assert source.reload(force=True) is True
    assert [r.name for r in source().rules] == ["oom-two"]


def test_a_reload_that_fails_unexpectedly_keeps_the_rules_in_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rules.yaml").write_text(GOOD)
    source = RuleSource([tmp_path])

    def broken(paths: object) -> None:
        raise MemoryError

    monkeypatch.setattr("tuner.daemon.reloading.load_rules", broken)
    assert source.reload(force=True) is False
    assert "MemoryError" in str(source.last_error)
    assert [r.name for r in source().rules] == ["oom"]


def test_check_reports_a_rule_name_used_in_two_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(GOOD)
    b.write_text("# the team's copy\n" + GOOD)
    assert main(["check", str(a), str(b)]) == 2
    assert capsys.readouterr().err == (
        f"{b}:3: rule 'oom': field 'name': duplicate rule name (also at {a}:2)\n"
    )
    assert main(["check", str(a), str(tmp_path / "a.yaml")]) == 0  # one file named twice


def test_check_of_a_folder_without_rule_files_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("not rules")
    assert main(["check", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"{tmp_path}: no rule files found (*.yaml)\n"


def test_check_of_a_missing_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: cannot read: No such file or directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "intervall: 30s\n",
            "field 'intervall': unknown key 'intervall' (did you mean 'interval'?)",
        ),
        (
            "guard: {max_changes_per_cycel: 3}\n",
            "unknown key 'max_changes_per_cycel' (did you mean 'max_changes_per_cycle'?)",
        ),
        (
            "providers: [{type: local, functions_dri: x}]\n",
            "field 'providers[0].functions_dri': unknown key 'functions_dri' "
            "(did you mean 'functions_dir'?)",
        ),
        (
            "channels: {team: {type: slack, webhok_url_env: X}}\n",
            "unknown key 'webhok_url_env' (did you mean 'webhook_url_env'?)",
        ),
        (
            "routing: {default_chanels: [console]}\n",
            "unknown key 'default_chanels' (did you mean 'default_channels'?)",
        ),
        ("zzz: 1\n", "field 'zzz': unknown key 'zzz'\n"),  # nothing close: no guess
    ],
)
def test_unknown_configuration_keys_get_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    cfg = tmp_path / "tuner.yaml"
    cfg.write_text(text)
    assert main(["check", str(cfg)]) == 2
    assert expected in capsys.readouterr().err


def test_unknown_rule_keys_get_did_you_mean(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text(GOOD.replace("    when:", "    whn: x\n    when:") + "        margn: 0.2\n")
    with pytest.raises(ConfigError) as err:
        load_rules([bad])
    messages = [p.message for p in err.value.problems]
    assert "unknown key 'whn' (did you mean 'when'?)" in messages
    assert "unknown key 'margn' (did you mean 'margin'?)" in messages
