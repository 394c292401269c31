"""What a policy becomes: its kinds (or the operator's), and the operator's channels."""

from __future__ import annotations

from pathlib import Path

import pytest

from operators.policies import TuningPolicySpec, tuner_document
from operators.runners import shared_channels
from operators.settings import OperatorSettings
from tuner.domain.errors import ConfigError


def provider_kinds(spec: dict[str, object], default: tuple[str, ...]) -> list[str]:
    document = tuner_document(
        TuningPolicySpec.model_validate(spec),
        namespace="shop",
        name="p",
        api_url=None,
        rules_file=Path("rules.yaml"),
        store_file=Path("tuner.db"),
        secret_files={},
        default_interval_s=30.0,
        default_kinds=default,
    )
    kinds: list[str] = document["providers"][0]["kinds"]
    return kinds


def test_a_policy_names_its_kinds_or_takes_the_operators() -> None:
    assert provider_kinds({"kinds": ["deployment"]}, ("deployment", "ksvc")) == ["deployment"]
    assert provider_kinds({}, ("deployment",)) == ["deployment"]
    assert provider_kinds({}, ("deployment", "ksvc")) == ["deployment", "ksvc"]


@pytest.mark.parametrize("kinds", [[], ["statefulset"]])
def test_a_policy_with_no_or_unknown_kinds_is_refused(kinds: list[str]) -> None:
    with pytest.raises(ValueError, match="kinds"):
        TuningPolicySpec.model_validate({"kinds": kinds})


def test_the_operator_reads_its_default_kinds_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUNER_KINDS", "deployment")
    assert OperatorSettings.from_env().kinds == ("deployment",)
    monkeypatch.delenv("TUNER_KINDS")
    assert OperatorSettings.from_env().kinds == ("deployment", "ksvc")


def test_the_operators_channels_reach_every_policy_and_a_policy_may_replace_one(
    tmp_path: Path,
) -> None:
    channels_file = tmp_path / "channels.yaml"
    channels_file.write_text(
        "team: {type: slack, webhook_url_env: TUNER_CHANNEL_TEAM_SECRET}\nlog: {type: console}\n"
    )
    shared = shared_channels(channels_file)
    spec = TuningPolicySpec.model_validate(
        {"channels": [{"name": "log", "type": "console", "options": {"format": "text"}}]}
    )
    document = tuner_document(
        spec,
        namespace="shop",
        name="p",
        api_url=None,
        rules_file=Path("r.yaml"),
        store_file=Path("t.db"),
        secret_files={},
        default_interval_s=30.0,
        shared_channels=shared,
    )
    assert document["channels"] == {
        "team": {"type": "slack", "webhook_url_env": "TUNER_CHANNEL_TEAM_SECRET"},
        "log": {"type": "console", "format": "text"},
    }
    assert document["routing"]["default_channels"] == ["team", "log"]


@pytest.mark.parametrize("text", ["- a list\n", "team: 3\n", "a: [\n"])
def test_a_bad_channels_file_is_an_error_naming_it(tmp_path: Path, text: str) -> None:
    channels_file = tmp_path / "channels.yaml"
    channels_file.write_text(text)
    with pytest.raises(ConfigError, match="channels.yaml"):
        shared_channels(channels_file)
