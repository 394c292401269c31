"""The kinds a policy tunes: its own ``kinds``, else the operator's default."""

from __future__ import annotations

from pathlib import Path

import pytest

from operators.policies import TuningPolicySpec, tuner_document
from operators.settings import OperatorSettings


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
