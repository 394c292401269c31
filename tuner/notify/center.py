"""The notification center: the :class:`tuner.domain.ports.Notifier` the loop talks to."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import structlog

from tuner.domain.decisions import Decision, Kind
from tuner.domain.lifecycle import UNTOLD
from tuner.domain.ports import Clock
from tuner.notify.alerts import Alert
from tuner.notify.channels import build_channels
from tuner.notify.delivery import Courier
from tuner.notify.grouping import Grouper, Section
from tuner.notify.messages import Message
from tuner.notify.outbox import Outbox
from tuner.notify.rendering import Renderer
from tuner.notify.settings import NotifySettings, load_settings

log = structlog.get_logger(__name__)

"""The action of a decision that says a rule stopped firing for a function."""
PRUNE_EVERY = 3600.0


class NotificationCenter:
    """Groups decisions into messages, keeps them in the outbox and delivers them.

    ``notify()`` only touches memory and the local database: it never waits for a
    channel.  Delivery runs on background threads after :meth:`start`, or in the
    caller's thread in :meth:`flush`.
    """

    def __init__(
        self,
        settings: NotifySettings,
        db_path: str | Path,
        clock: Clock,
        *,
        stream: TextIO | None = None,
        rng: random.Random | None = None,
        tick: float = 0.2,
    ):
        self._settings = settings
        self._clock = clock
        self._tick = tick
        self._renderer = Renderer(settings.templates)
        self._channels = build_channels(settings, stream)
        self._outbox = Outbox(db_path, owner=uuid.uuid4().hex)
        self._grouper = Grouper(settings.routing, self._outbox.load_groups(), clock.now())
        self._couriers = [
            Courier(c, self._outbox, clock, settings.delivery, rng) for c in self._channels.values()
        ]
        self._state_lock = threading.Lock()
        self._pass_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._unknown_channels: set[str] = set()
        self._last_prune = float("-inf")

    @property
    def outbox(self) -> Outbox:
        """The outbox, for inspection (``tuner`` commands, tests)."""
        return self._outbox

    def observe_delivery(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(channel, result)`` after every delivery attempt (for metrics)."""
        for courier in self._couriers:
            courier.on_result = callback

    @property
    def channel_names(self) -> list[str]:
        """The configured channel names, to check the channels rules refer to."""
        return sorted(self._channels)

    def notify(self, decisions: Sequence[Decision]) -> None:
        """Take this cycle's decisions into their groups (observed, skipped ones are ignored).

        A decision with action ``resolved`` resolves the rule's alerts for its function.
        Never raises: a notifier fault must not stop the loop (it is logged).
        """
        try:
            now = self._clock.now()
            with self._state_lock:
                for decision in decisions:
                    self._take(decision, now)
                self._outbox.save(self._grouper.drain_changes())
        except Exception:
            log.exception("notify failed", decisions=len(decisions))

    def _take(self, decision: Decision, now: float) -> None:
        if decision.kind is Kind.RESOLVED:
            self._grouper.resolve(decision.ref.key, decision.rule, now)
        elif decision.state not in UNTOLD:
            alert = Alert.from_decision(decision)
            for channel in self._route(decision):
                self._grouper.add(channel, alert, now)

    def _route(self, decision: Decision) -> list[str]:
        """The channels a decision goes to: its rule's (else the default ones) and its routes'."""
        routing = self._settings.routing
        known = [name for name in decision.channels if name in self._channels]
        for name in set(decision.channels) - set(known) - self._unknown_channels:
            self._unknown_channels.add(name)
            log.warning(
                "rule names an unknown channel; using the default ones",
                rule=decision.rule,
                channel=name,
            )
        channels = known or list(routing.default_channels)
        for route in routing.routes:
            if route.matches(decision):
                channels += route.channels
        return list(dict.fromkeys(channels))

    def start(self) -> None:
        """Start the background threads that group and deliver."""
        if self._threads:
            return
        self._stop.clear()
        self._spawn("tuner-notify-grouping", self.queue_due)
        for courier in self._couriers:
            self._spawn(f"tuner-notify-{courier.channel.name}", courier.deliver_due)
        log.info("notifier started", channels={n: c.type for n, c in self._channels.items()})

    def _spawn(self, name: str, work: Callable[[], object]) -> None:
        def run() -> None:
            while not self._stop.wait(self._tick):
                try:
                    work()
                except Exception:
                    log.exception("notifier thread failed; continuing", thread=name)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def flush(self, timeout: float = 10.0, include_waiting: bool = False) -> int:
        """Deliver what is due now, waiting up to ``timeout`` s for rate limits and retries.

        With ``include_waiting`` groups still inside ``group_wait`` or ``group_interval``
        are sent too (for ``tuner once``, which exits next).  Returns how many messages
        are still queued.
        """
        deadline = time.monotonic() + timeout
        self.queue_due(include_waiting)
        while True:
            for courier in self._couriers:
                courier.deliver_due()
            due = [t for c in self._couriers if (t := c.next_due()) is not None]
            if not due:
                return 0
            remaining = deadline - time.monotonic()
            wait = min(due) - self._clock.now()
            if remaining <= 0 or wait > remaining:
                return self.pending()
            time.sleep(min(max(wait, 0.01), remaining))

    def pending(self) -> int:
        """How many messages are queued and not yet delivered."""
        return self._outbox.counts().get("queued", 0)

    def close(self) -> None:
        """Stop the threads and close the database; pending messages stay queued."""
        self._stop.set()
        longest = max((c.timeout for c in self._channels.values()), default=1.0)
        for thread in self._threads:
            thread.join(timeout=longest + self._tick + 1.0)
        self._threads.clear()
        self._outbox.close()

    def __enter__(self) -> NotificationCenter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def queue_due(self, include_waiting: bool = False) -> int:
        """Turn the groups due now into queued messages (without sending them).

        Also deals with messages a stopped sender left behind, and prunes old ones.
        Returns how many messages were queued.
        """
        with self._pass_lock:
            now = self._clock.now()
            requeued, in_doubt = self._outbox.recover(now, self._resends)
            if requeued or in_doubt:
                log.warning(
                    "found messages a stopped sender left behind",
                    requeued=len(requeued),
                    in_doubt=len(in_doubt),
                )
            with self._state_lock:  # notify() waits for this part only, not for rendering
                sections = self._grouper.take_due(now, include_waiting)
                changes = self._grouper.drain_changes()
            messages = self._render(sections, now)
            self._outbox.save(changes, messages, now)
            if now - self._last_prune >= PRUNE_EVERY:
                self._last_prune = now
                self._outbox.prune(now - self._settings.delivery.keep_sent)
        return len(messages)

    def _resends(self, channel: str) -> bool:
        known = self._channels.get(channel)
        return known is not None and known.resend_in_doubt

    def _render(self, sections: Sequence[Section], now: float) -> list[Message]:
        """One message per section, or one digest per channel in a storm."""
        by_channel: dict[str, list[Section]] = defaultdict(list)
        for section in sections:
            by_channel[section.channel].append(section)
        messages = []
        threshold = self._settings.routing.storm_threshold
        for name, channel_sections in by_channel.items():
            channel = self._channels.get(name)
            if channel is None:
                log.warning("dropping groups of a channel no longer configured", channel=name)
                continue
            batches = (
                [channel_sections]
                if len(channel_sections) > threshold
                else [[s] for s in channel_sections]
            )
            for batch in batches:
                try:
                    messages.append(self._renderer.render(name, channel.type, batch, now))
                except Exception:
                    log.exception("rendering failed", channel=name, groups=len(batch))
        return messages


def build_notifier(
    settings: NotifySettings | Mapping[str, Any],
    db_path: str | Path,
    clock: Clock,
    **options: Any,
) -> NotificationCenter:
    """A :class:`NotificationCenter` from settings (a model or the raw config mapping).

    ``options`` are passed on (``stream``, ``rng``, ``tick``).  Raises
    :class:`tuner.domain.errors.ConfigError` for invalid settings or missing secrets.
    """
    return NotificationCenter(load_settings(settings), db_path, clock, **options)
