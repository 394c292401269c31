"""Channels: Slack, email, webhook and console, built from their settings."""

from __future__ import annotations

from typing import TextIO

from tuner.errors import ConfigError, Problem
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

__all__ = ["Channel", "DeliveryError", "build_channel", "build_channels"]


def build_channel(name: str, settings: ChannelSettings, stream: TextIO | None = None) -> Channel:
    """The channel for one ``channels:`` entry, with its secrets read now.

    Raises :class:`tuner.notify.secrets.SecretMissingError` when a secret is missing.
    SDKs are imported here, so only configured channels pay for them.
    """
    what = f"channel '{name}'"
    if isinstance(settings, SlackChannelSettings):
        from tuner.notify.channels.slack import SlackChannel

        url = read_secret(env=settings.webhook_url_env, file=settings.webhook_url_file, what=what)
        return SlackChannel(name, settings, url)
    if isinstance(settings, WebhookChannelSettings):
        from tuner.notify.channels.webhook import WebhookChannel

        url = read_secret(env=settings.url_env, file=settings.url_file, what=what)
        return WebhookChannel(name, settings, url)
    if isinstance(settings, EmailChannelSettings):
        from tuner.notify.channels.email import EmailChannel

        username = settings.username
        if settings.username_env is not None:
            username = read_secret(env=settings.username_env, file=None, what=what).reveal()
        password = None
        if username is not None:
            password = read_secret(
                env=settings.password_env, file=settings.password_file, what=what
            )
        return EmailChannel(name, settings, username, password)
    assert isinstance(settings, ConsoleChannelSettings)
    from tuner.notify.channels.console import ConsoleChannel

    return ConsoleChannel(name, settings, stream)


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
