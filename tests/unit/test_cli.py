"""The command line: check's exit codes and messages, schema checking, the README's config."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tuner.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_check_valid_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(ROOT / "rules" / "default.yaml"), str(ROOT / "rules")]) == 0
    assert "ok" in capsys.readouterr().out


def test_check_reports_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "team.yaml"
    bad.write_text(
        "rules:\n  - name: oom\n    when: ooms > 0.0\n    actions:\n      - action: more-memroy\n"
    )
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{bad}:5: rule 'oom': field 'actions': unknown action 'more-memroy' (did you mean 'more-memory'?)"
        in err
    )


def test_check_a_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "tuner.yaml"
    cfg.write_text(
        "mode: apply\ninterval: 30s\nproviders:\n  - type: local\n    functions_dirr: x\n"
    )
    assert main(["check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:5: field 'providers[0].functions_dirr'" in err
    cfg.write_text("mode: sometimes\n")
    assert main(["check", str(cfg)]) == 2
    assert f"{cfg}:1: field 'mode'" in capsys.readouterr().err
    cfg.write_text("providers:\n  - type: azure\n")
    assert main(["check", str(cfg)]) == 2
    assert "unknown provider type 'azure'" in capsys.readouterr().err
    cfg.write_text("providers: []\nhttp: off\n")  # YAML reads a bare off as false
    assert main(["check", str(cfg)]) == 0
    cfg.write_text("providers: []\nhttp: banana\n")
    assert main(["check", str(cfg)]) == 2
    assert f"{cfg}:2: field 'http'" in capsys.readouterr().err


def test_check_a_configuration_whose_rules_name_an_unknown_channel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "team.yaml"
    rules.write_text(
        "rules:\n  - name: oom\n    when: ooms > 0.0\n    actions: [{action: notify}]\n    notify: [pager]\n"
    )
    cfg = tmp_path / "tuner.yaml"
    cfg.write_text("rules: [team.yaml]\nchannels:\n  console: {type: console}\n")
    assert main(["check", str(cfg)]) == 2
    assert (
        f"{rules}:2: rule 'oom': field 'notify': unknown channel 'pager'" in capsys.readouterr().err
    )
    cfg.write_text("channels:\n  team: {type: slack, webhook_url: https://hooks.example/secret}\n")
    assert main(["check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:2" in err and "hooks.example/secret" not in err


CONFIG_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONFIG_BLOCKS = [
    (path.name, block)
    for path in CONFIG_DOCS
    for block in re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S)
    if not block.lstrip().startswith(("rules:", "version:"))
]


@pytest.mark.parametrize(("doc", "block"), CONFIG_BLOCKS, ids=[d for d, _ in CONFIG_BLOCKS])
def test_documented_configurations_are_valid(tmp_path: Path, doc: str, block: str) -> None:
    """Every configuration example in the README and docs/ passes ``tuner check``."""
    cfg = tmp_path / "tuner.yaml"
    cfg.write_text(block.replace("rules: [rules/]", f"rules: [{ROOT / 'rules'}]"))
    (tmp_path / "templates").mkdir()
    assert main(["check", str(cfg)]) == 0


def test_the_docs_hold_configuration_examples() -> None:
    assert {"README.md", "aws.md", "kubernetes.md", "local.md", "notifications.md"} <= {
        d for d, _ in CONFIG_BLOCKS
    }


def test_schema_check_detects_a_stale_file(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    assert main(["schema", "-o", str(out), "--check"]) == 1
    assert main(["schema", "-o", str(out)]) == 0
    assert main(["schema", "-o", str(out), "--check"]) == 0


def test_facts_lists_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["facts"]) == 0
    out = capsys.readouterr().out
    assert "peak_memory_mb" in out and "dependency_failing_functions" in out


@pytest.mark.parametrize(
    ("section", "blocked", "said"),
    [
        (
            "channels:\n  team:\n    type: slack\n    webhook_url_env: HOOK\n",
            "slack_sdk",
            ":4: field 'channels.team.type': slack needs the extra 'slack': "
            "pip install 'tuner[slack]' (slack_sdk is not installed)",
        ),
        (
            "providers:\n  - type: aws\n    regions: [eu-west-1]\n",
            "boto3",
            ":2: field 'providers[0].type': aws needs the extra 'aws': "
            "pip install 'tuner[aws]' (boto3 is not installed)",
        ),
    ],
)
@pytest.mark.parametrize("command", ["check", "run"])
def test_check_and_start_up_say_which_extra_a_configuration_needs(
    tmp_path: Path, section: str, blocked: str, said: str, command: str
) -> None:
    """A plain install without the extra: `tuner check` and `tuner run` name it, before
    anything runs."""
    config = tmp_path / "tuner.yaml"
    config.write_text(("providers: []\n" if "providers" not in section else "") + section)
    argv = [command, "-c", "{path}", "--for", "30s"] if command == "run" else [command, "{path}"]
    code = (
        f"import sys; sys.modules[{blocked!r}] = None  # as if it were not installed\n"
        f"from tuner.cli.main import main; sys.exit(main({argv!r}))".replace(
            "'{path}'", "sys.argv[1]"
        )
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert f"{config}{said}" in result.stderr


def test_a_fresh_demo_keeps_the_example_applications_state(tmp_path: Path) -> None:
    from tuner.cli.running import fresh_start

    state = tmp_path / ".tuner"
    (state / "traces" / "report-builder").mkdir(parents=True)
    (state / "traces" / "report-builder" / "t.json").write_text("{}")
    (state / "app" / "traces" / "resize").mkdir(parents=True)
    (state / "app" / "tuner.db").write_text("")
    (state / "app" / "traces" / "resize" / "t.json").write_text("{}")
    for name in ("tuner.db", "tuner.db.lock", "local.sqlite", "local-token"):
        (state / name).write_text("")
    fresh_start(state)
    assert sorted(p.relative_to(state).as_posix() for p in state.rglob("*")) == [
        "app",
        "app/traces",
        "app/traces/resize",
        "app/traces/resize/t.json",
        "app/tuner.db",
    ]
