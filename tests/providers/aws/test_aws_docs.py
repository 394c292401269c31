"""docs/aws.md documents every option of the provider."""

from __future__ import annotations

from pathlib import Path

from tuner.providers.aws import Settings

DOC = Path(__file__).parents[3] / "docs" / "aws.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    missing = [name for name in Settings.model_fields if name != "type" and f"`{name}`" not in text]
    assert missing == []
