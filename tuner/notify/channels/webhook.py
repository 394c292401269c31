"""The generic webhook channel: every message as a JSON POST."""

from __future__ import annotations

import json
import urllib.request

from tuner.notify.channels.base import ChannelOptions, http_failure, status_failure
from tuner.notify.messages import Message
from tuner.notify.secrets import Secret
from tuner.notify.settings import WebhookChannelSettings


class WebhookChannel(ChannelOptions):
    """POSTs each message's JSON to one URL, with the message id as Idempotency-Key."""

    type = "webhook"

    def __init__(self, name: str, settings: WebhookChannelSettings, url: Secret):
        super().__init__(name, settings)
        self._url = url

    def send(self, message: Message) -> None:
        """POST ``{"id": ..., **message.data}``; receivers can deduplicate by the id."""
        body = json.dumps({"id": message.id, **message.data}).encode("utf-8")
        request = urllib.request.Request(
            self._url.reveal(),
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": message.id,
                "User-Agent": "tuner-notify/1",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except Exception as error:
            raise http_failure(error, self._url.reveal()) from None
        if not 200 <= status < 300:
            raise status_failure(status, retry_after)

    def redact(self, text: str) -> str:
        """``text`` without the URL."""
        return self._url.redact(text)
