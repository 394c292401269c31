"""Delivery of one channel's queued messages: in order, paced, retried with backoff."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import structlog

from tuner.domain.ports import Clock
from tuner.notify.channels import Channel, DeliveryError
from tuner.notify.outbox import Claim, Outbox
from tuner.notify.settings import DeliverySettings

log = structlog.get_logger(__name__)

LEASE_MARGIN = 30.0
"""Seconds a claim outlives the channel's timeout before it counts as abandoned."""


def backoff(attempt: int, settings: DeliverySettings, rng: random.Random) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1, 2, ...): doubling, with jitter.

    The delay is drawn from the upper half of the doubled interval ("equal jitter"), so
    retries of many messages spread out but never come sooner than half the interval.
    """
    ceiling = min(settings.retry_max, settings.retry_initial * 2.0 ** (attempt - 1))
    return ceiling * rng.uniform(0.5, 1.0)


class Courier:
    """Sends one channel's messages from the outbox, one at a time, in queue order.

    Calls from several threads are serialised; the network call happens outside the
    outbox's lock, so queueing never waits for a channel.
    """

    def __init__(
        self,
        channel: Channel,
        outbox: Outbox,
        clock: Clock,
        settings: DeliverySettings,
        rng: random.Random | None = None,
    ):
        self.channel = channel
        self._outbox = outbox
        self._clock = clock
        self._settings = settings
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._not_before = 0.0
        """The channel's own pause: its rate limit or a Retry-After."""
        self.on_result: Callable[[str, str], None] | None = None
        """Told (channel, result) after each attempt: sent, retry, in-doubt or dead."""

    def _tell(self, result: str) -> None:
        if self.on_result is not None:
            self.on_result(self.channel.name, result)

    def next_due(self) -> float | None:
        """When this channel may next send, or None when nothing is queued."""
        due = self._outbox.next_due(self.channel.name)
        return None if due is None else max(due, self._not_before)

    def deliver_due(self) -> int:
        """Send every message that is due now; returns how many arrived."""
        delivered = 0
        with self._lock:
            while True:
                now = self._clock.now()
                if now < self._not_before:
                    return delivered
                lease = self.channel.timeout * 2 + LEASE_MARGIN
                claim = self._outbox.claim(self.channel.name, now, lease)
                if claim is None:
                    return delivered
                if not self._attempt(claim):
                    return delivered
                delivered += 1

    def _attempt(self, claim: Claim) -> bool:
        """One attempt at one message; True when it arrived."""
        message = claim.message
        said = log.bind(channel=self.channel.name, message=message.id)
        try:
            self.channel.send(message)
        except DeliveryError as error:
            return self._failed(claim, error, said)
        except Exception as error:  # a fault in tuner's own code: retry, never lose
            said.exception("channel failed unexpectedly")
            return self._failed(claim, DeliveryError(self.channel.redact(repr(error))), said)
        self._sent(message.id)
        said.info("message sent", kind=message.kind, group=message.group, attempt=claim.attempt)
        return True

    def _sent(self, message_id: str) -> None:
        now = self._clock.now()
        self._outbox.mark_sent(message_id, now)
        self._not_before = now + self.channel.min_interval
        self._tell("sent")

    def _failed(self, claim: Claim, error: DeliveryError, said: Any) -> bool:
        message_id = claim.message.id
        reason = self.channel.redact(str(error))
        now = self._clock.now()
        if error.delivered:
            self._sent(message_id)
            said.warning("message sent with a problem", error=reason)
            return True
        if error.delivered is None and not self.channel.resend_in_doubt:
            self._outbox.mark_in_doubt(message_id, reason)
            self._tell("in-doubt")
            said.error("message may not have arrived; not sent again", error=reason)
            return False
        if now - claim.created_at >= self._settings.give_up_after:
            self._outbox.mark_dead(message_id, reason)
            self._tell("dead")
            said.error("message given up", attempts=claim.attempt, error=reason)
            return False
        if error.retry_after is not None:  # the receiver said when: honour it exactly
            delay = error.retry_after
            self._not_before = now + delay
        else:
            delay = backoff(claim.attempt, self._settings, self._rng)
        self._outbox.mark_retry(message_id, now + delay, reason)
        self._tell("retry")
        said.warning(
            "message not delivered; will retry",
            attempt=claim.attempt,
            retry_in=round(delay, 3),
            error=reason,
        )
        return False
