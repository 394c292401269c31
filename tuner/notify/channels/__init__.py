"""Channels: Slack, email, webhook and console, built from their settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from tuner.domain.errors import ConfigError, Problem
from tuner.domain.registry import Entry, Registry
from tuner.notify.channels.base import Channel, DeliveryError
from tuner.notify.secrets import SecretMissingError, read_secret
from tuner.notify.settings import (
    ChannelSettings,
    ConsoleChannelSettings,
    EmailChannelSettings,
    NotifySettings,
    SlackChannelSettings,
    WebhookChannelSettings,
)

__all__ = ["CHANNELS", "Channel", "DeliveryError", "build_channel", "build_channels"]


ChannelBuilder = Callable[[str, Any, "TextIO | None"], Channel]
"""Builds a channel from its name, its settings and the console's stream, reading secrets now."""


def _slack(name: str, settings: SlackChannelSettings, stream: TextIO | None) -> Channel:
    from tuner.notify.channels.slack import SlackChannel

    what = f"channel '{name}'"
    url = read_secret(env=settings.webhook_url_env, file=settings.webhook_url_file, what=what)
    return SlackChannel(name, settings, url)


def _webhook(name: str, settings: WebhookChannelSettings, stream: TextIO | None) -> Channel:
    from tuner.notify.channels.webhook import WebhookChannel

    url = read_secret(env=settings.url_env, file=settings.url_file, what=f"channel '{name}'")
    return WebhookChannel(name, settings, url)


def _email(name: str, settings: EmailChannelSettings, stream: TextIO | None) -> Channel:
    from tuner.notify.channels.email import EmailChannel

    what = f"channel '{name}'"
    username = settings.username
    if settings.username_env is not None:
        username = read_secret(env=settings.username_env, file=None, what=what).reveal()
    password = None
    if username is not None:
        password = read_secret(env=settings.password_env, file=settings.password_file, what=what)
    return EmailChannel(name, settings, username, password)


def _console(name: str, settings: ConsoleChannelSettings, stream: TextIO | None) -> Channel:
    from tuner.notify.channels.console import ConsoleChannel

    return ConsoleChannel(name, settings, stream)


def _entry(
    name: str,
    build: Callable[..., Channel],
    settings: type[Any],
    summary: str,
    needs: tuple[str, ...] = (),
) -> Entry[ChannelBuilder]:
    return Entry(name, lambda: build, settings=settings, summary=summary, needs=needs, extra=name)


CHANNELS: Registry[ChannelBuilder] = Registry(
    "channel type",
    [
        _entry(
            "slack",
            _slack,
            SlackChannelSettings,
            "a Slack incoming webhook (slack-sdk)",
            needs=("slack_sdk",),
        ),
        _entry("email", _email, EmailChannelSettings, "mail over SMTP"),
        _entry("webhook", _webhook, WebhookChannelSettings, "a JSON POST to any HTTP endpoint"),
        _entry("console", _console, ConsoleChannelSettings, "the terminal tuner runs in"),
    ],
)
"""Channel type -> how to build it; SDKs are imported only by the channels configured."""


def build_channel(name: str, settings: ChannelSettings, stream: TextIO | None = None) -> Channel:
    """The channel for one ``channels:`` entry, with its secrets read now.

    Raises :class:`tuner.notify.secrets.SecretMissingError` when a secret is missing.
    """
    return CHANNELS.load(settings.type)(name, settings, stream)


def build_channels(settings: NotifySettings, stream: TextIO | None) -> dict[str, Channel]:
    """Every configured channel; all missing secrets are reported at once."""
    channels: dict[str, Channel] = {}
    problems = []
    for name, channel_settings in settings.channels.items():
        try:
            channels[name] = build_channel(name, channel_settings, stream)
        except SecretMissingError as error:
            problems.append(Problem("tuner.yaml", None, str(error), field=f"channels.{name}"))
    if problems:
        raise ConfigError(problems)
    return channels
