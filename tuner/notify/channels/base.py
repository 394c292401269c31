"""What every channel is: a named way to send one rendered message."""

from __future__ import annotations

import http.client
import urllib.error
from typing import Protocol

from tuner.notify.messages import Message
from tuner.notify.settings import ChannelSettingsBase


class DeliveryError(Exception):
    """Sending failed; ``delivered`` says whether the message may have arrived anyway.

    ``delivered=False``: it certainly did not arrive (refused, rejected): safe to retry.
    ``delivered=None``: unknown (the connection broke after the message was handed over).
    """

    def __init__(
        self, message: str, *, delivered: bool | None = False, retry_after: float | None = None
    ):
        super().__init__(message)
        self.delivered = delivered
        self.retry_after = retry_after


class ChannelOptions:
    """The options every channel has, taken from its settings."""

    def __init__(self, name: str, settings: ChannelSettingsBase):
        self.name = name
        self.min_interval = settings.min_interval
        self.resend_in_doubt = settings.resend_in_doubt
        self.timeout = settings.timeout


class Channel(Protocol):
    """A named destination for messages."""

    name: str
    type: str
    min_interval: float
    """Seconds to leave between two messages (rate limit)."""
    resend_in_doubt: bool
    """Whether a message whose delivery is unknown after a crash is sent again."""
    timeout: float

    def send(self, message: Message) -> None:
        """Deliver one message or raise :class:`DeliveryError`; no retries inside."""
        ...

    def redact(self, text: str) -> str:
        """``text`` with the channel's secrets replaced by ``***``."""
        ...


def http_failure(error: BaseException, redact: str | None = None) -> DeliveryError:
    """Classify an exception from an HTTP POST made with urllib.

    ``URLError`` is raised while connecting or sending the request, before any response:
    the message did not arrive.  Errors while reading the response (timeouts, resets)
    leave it unknown.
    """
    text = f"{type(error).__name__}: {error}"
    if redact:
        text = text.replace(redact, "***")
    if isinstance(error, urllib.error.HTTPError):
        return status_failure(error.code, error.headers.get("Retry-After"))
    if isinstance(error, urllib.error.URLError):
        return DeliveryError(text, delivered=False)
    if isinstance(error, OSError | http.client.HTTPException):
        return DeliveryError(text, delivered=None)
    return DeliveryError(text, delivered=False)


def status_failure(status: int, retry_after: str | None) -> DeliveryError:
    """The error for a non-2xx HTTP status; a 429's ``Retry-After`` (seconds) is kept."""
    wait = None
    if retry_after is not None:
        try:
            wait = max(0.0, float(retry_after))
        except ValueError:
            wait = None
    return DeliveryError(f"HTTP {status}", delivered=False, retry_after=wait)
