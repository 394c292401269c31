"""The Slack channel: incoming webhooks through slack-sdk, Block Kit with a text fallback."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from slack_sdk.webhook import WebhookClient

from tuner.notify.channels.base import ChannelOptions, http_failure, status_failure
from tuner.notify.messages import Message
from tuner.notify.secrets import Secret
from tuner.notify.settings import SlackChannelSettings

SLACK_TEXT_LIMIT = 3900

_sdk_log = logging.getLogger("tuner.notify.slack_sdk")
_sdk_log.setLevel(logging.CRITICAL)  # the SDK logs request URLs at debug level: the secret
_sdk_log.propagate = False


class SlackChannel(ChannelOptions):
    """Posts messages to one Slack incoming webhook."""

    type = "slack"

    def __init__(self, name: str, settings: SlackChannelSettings, url: Secret):
        super().__init__(name, settings)
        self._url = url
        self._client = WebhookClient(
            url.reveal(),
            timeout=max(1, math.ceil(settings.timeout)),
            logger=_sdk_log,
            retry_handlers=[],  # the outbox retries; the SDK must not send twice
        )

    def send(self, message: Message) -> None:
        """Post the message; a non-2xx status raises, with a 429's Retry-After."""
        text = f"{message.title}\n\n{message.text}"
        if len(text) > SLACK_TEXT_LIMIT:
            text = text[: SLACK_TEXT_LIMIT - 1] + "…"
        try:
            response = self._client.send(text=text, blocks=message.blocks or None)
        except Exception as error:
            raise http_failure(error, self._url.reveal()) from None
        if not 200 <= response.status_code < 300:
            raise status_failure(response.status_code, _header(response.headers, "Retry-After"))

    def redact(self, text: str) -> str:
        """``text`` without the webhook URL."""
        return self._url.redact(text)


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    """A header's value, whatever the case of its name (the SDK passes a dict or a message)."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) else value)
    return None
