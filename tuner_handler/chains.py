"""Handover (a worm function): a job longer than one invocation, done in links of a chain.

The handler works in steps and keeps its progress in ``context.state`` (a JSON mapping,
empty on the first link).  At each step boundary it calls ``context.checkpoint()``, or it
loops with ``context.each(items)``, which does so for it.  When the time left is below the
margin (``TUNER_HANDOVER_S``) plus the longest step seen so far, the invocation ends
cleanly and the platform starts the next link with the state; the last link's return
value is the chain's result.  Each step runs at least once: a link that is interrupted
(a crash, a platform retry) runs again from the state it was handed, so the steps it
did since run again (docs/remedies.md says how to make a step idempotent).

Example::

    from tuner_handler import handover

    @handover
    def handler(event, context):
        total = context.state.setdefault("total", 0)
        for account in context.each(event["accounts"]):
            context.state["total"] += close_month(account)
        return context.state["total"]
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from tuner_handler.envelopes import opened_link
from tuner_handler.outcomes import Refused
from tuner_handler.platforms import platform_of, remaining_ms, request_id
from tuner_handler.settings import SUPPORTS_ATTRIBUTE, handover_margin_s, max_links

Item = TypeVar("Item")


class HandoverRefused(Exception):
    """The chain could not go on (too many links, a state too large or not JSON, refused)."""


class _HandOver(BaseException):
    """Raised at a checkpoint to end the link; a BaseException, so ``except Exception`` in
    the handler lets it pass."""


class Link:
    """The context a handover handler gets: the platform's own context, plus its chain.

    Every attribute the platform's context has (``function_name``, ``logger``...) is
    reachable through it.
    """

    def __init__(
        self, context: Any, state: dict[str, Any], chain: str, link: int, margin_s: float
    ) -> None:
        self.state = state
        """The progress carried from link to link (JSON: keys are strings)."""
        self.chain_id = chain
        """The chain's id, the same for every link: the first invocation's request id."""
        self.link = link
        """1 for the invocation that began the chain, 2 for the next..."""
        self._context = context
        self._margin_s = margin_s
        self._last: float | None = None
        self._longest_s = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def step_key(self, position: object) -> str:
        """A key for one step that is the same whichever link runs it: for idempotent writes."""
        return f"{self.chain_id}:{position}"

    def checkpoint(self) -> None:
        """Mark a step boundary: hand over here if the time left is short.

        Call it where ``state`` holds everything done so far: what the next link needs
        to carry on.  With handover off it only measures the step.
        """
        now = time.monotonic()
        if self._last is not None:
            self._longest_s = max(self._longest_s, now - self._last)
        self._last = now
        if self._margin_s <= 0:
            return
        left = remaining_ms(self._context)
        if left is not None and left / 1000.0 < self._margin_s + self._longest_s:
            raise _HandOver

    def each(self, items: Sequence[Item], key: str = "position") -> Iterator[Item]:
        """The items from ``state[key]`` on, with a checkpoint before each; ``state[key]``
        counts the items done."""
        position = int(self.state.setdefault(key, 0))
        while position < len(items):
            self.checkpoint()
            yield items[position]
            position += 1
            self.state[key] = position


Handler = Callable[[Any, Any], Any]


def handover(handler: Handler) -> Handler:
    """Let ``handler(event, context)`` hand its state over to a fresh invocation.

    The handler gets a :class:`Link` as its context.  Where the platform cannot hand
    over, or handover is off, it runs as it would undecorated (``checkpoint`` then never
    ends it).  A link that hands over returns ``{"handed_over": {"chain", "link"}}``.
    """
    if getattr(handler, SUPPORTS_ATTRIBUTE, None):
        raise TypeError("a handler takes one remedy: handover or split, not both")

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        """Run one link of the chain."""
        original, position = opened_link(event)
        platform = platform_of(context)
        margin = handover_margin_s() if platform is not None else 0.0
        if position is None:
            chain, number, state = request_id(context), 1, {}
        else:
            chain, number, state = position.chain, position.link, position.state
        link = Link(context, json.loads(json.dumps(state)), chain, number, margin)
        try:
            return handler(original, link)
        except _HandOver:
            pass
        assert platform is not None  # only a platform's margin hands over
        if number >= max_links():
            raise HandoverRefused(
                f"chain {chain} reached its most links ({max_links()}, TUNER_HANDOVER_MAX_LINKS)"
            )
        try:
            chain, following = platform.hand_over(context, chain, number + 1, link.state, original)
        except Refused as error:
            raise HandoverRefused(str(error)) from None
        return {"handed_over": {"chain": chain, "link": following}}

    setattr(run, SUPPORTS_ATTRIBUTE, "handover")
    return run
