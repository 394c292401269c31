"""The channels/routing/delivery configuration: defaults, durations, secrets kept out."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.fakes import FakeClock
from tuner.domain.errors import ConfigError
from tuner.notify import NotifySettings, build_notifier, load_settings
from tuner.notify.secrets import Secret
from tuner.notify.settings import RoutingSettings


def test_routing_defaults_follow_alertmanager() -> None:
    routing = RoutingSettings()
    assert (routing.group_wait, routing.group_interval, routing.repeat_interval) == (
        30,
        300,
        14400,
    )
    assert routing.group_by == ["group"] and routing.send_resolved and routing.inhibit


def test_a_console_channel_exists_without_configuration() -> None:
    settings = NotifySettings()
    assert settings.channels["console"].type == "console"
    assert settings.routing.default_channels == ["console"]


def test_the_example_configuration_loads() -> None:
    settings = load_settings(
        {
            "channels": {
                "team-slack": {"type": "slack", "webhook_url_env": "SLACK_WEBHOOK_URL"},
                "oncall-mail": {
                    "type": "email",
                    "host": "smtp.example.com",
                    "port": 465,
                    "security": "tls",
                    "username": "tuner",
                    "password_file": "/run/secrets/smtp",
                    "from": "tuner@example.com",
                    "to": ["oncall@example.com"],
                },
                "hooks": {"type": "webhook", "url_env": "HOOK_URL", "timeout": "5s"},
            },
            "routing": {"group_wait": "10s", "default_channels": ["team-slack"]},
        }
    )
    assert settings.channels["team-slack"].min_interval == 1.0  # Slack: 1 message/s
    assert settings.routing.group_wait == 10


@pytest.mark.parametrize(
    ("channel", "field"),
    [
        (
            {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/xyz"},
            "webhook_url",
        ),
        ({"type": "webhook", "url": "https://example.com/hook?token=xyz"}, "url"),
        (
            {
                "type": "email",
                "host": "h",
                "from": "a@b",
                "to": ["c@d"],
                "username": "u",
                "password": "xyz",
            },
            "password",
        ),
    ],
)
def test_a_literal_secret_is_rejected_clearly_without_echoing_it(
    channel: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"channels": {"c": channel}})
    text = str(caught.value)
    assert f"'{field}' is a secret" in text and f"{field}_env" in text
    assert "xyz" not in text


def test_secret_sources_are_exclusive_and_required() -> None:
    with pytest.raises(ValidationError, match="not both"):
        NotifySettings.model_validate(
            {"channels": {"s": {"type": "slack", "webhook_url_env": "A", "webhook_url_file": "f"}}}
        )
    with pytest.raises(ValidationError, match="webhook_url_env or webhook_url_file"):
        NotifySettings.model_validate({"channels": {"s": {"type": "slack"}}})
    with pytest.raises(ValidationError, match="password_env or password_file"):
        NotifySettings.model_validate(
            {
                "channels": {
                    "m": {
                        "type": "email",
                        "host": "h",
                        "from": "a@b",
                        "to": ["c@d"],
                        "username": "u",
                    }
                }
            }
        )


def test_unknown_default_channels_and_fields_are_errors() -> None:
    with pytest.raises(ConfigError, match="unknown channels: pager"):
        load_settings({"routing": {"default_channels": ["pager"]}})
    with pytest.raises(ConfigError, match=r"routing.routes\[0\].channels names unknown"):
        load_settings({"routing": {"routes": [{"severity": ["critical"], "channels": ["x"]}]}})
    with pytest.raises(ConfigError) as caught:
        load_settings({"routing": {"group_wiat": "30s"}})
    assert caught.value.problems[0].field == "routing.group_wiat"


def test_a_missing_secret_stops_the_build_with_the_variable_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUNER_TEST_UNSET_URL", raising=False)
    raw = {"channels": {"s": {"type": "slack", "webhook_url_env": "TUNER_TEST_UNSET_URL"}}}
    with pytest.raises(ConfigError, match="TUNER_TEST_UNSET_URL is not set"):
        build_notifier(raw, tmp_path / "t.db", FakeClock())


def test_secrets_read_from_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "url"
    secret_file.write_text("http://127.0.0.1:9/hook\n")
    raw = {"channels": {"h": {"type": "webhook", "url_file": str(secret_file)}}}
    with build_notifier(raw, tmp_path / "t.db", FakeClock()) as center:
        assert center.channel_names == ["console", "h"]


def test_a_secret_never_shows_in_repr_or_str() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) + str(secret) + f"{secret}" + repr([secret])
    assert secret.redact("GET http://x/hunter2/y") == "GET http://x/***/y"
