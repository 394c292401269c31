"""The envelopes that carry a chain's state to its next link and a part to its invocation.

One format for every platform, read by the library and written by tuner's local host:

- a link: ``{"tuner_handover": {"chain": ID, "link": N, "state": {...}}, "event": EVENT}``,
  where ``EVENT`` is the event the chain began with;
- a part: ``{"tuner_part": {"index": I, "parts": N}, "event": PART}``.

An event that is not an envelope is the event of a fresh invocation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHAIN_KEY = "tuner_handover"
PART_KEY = "tuner_part"
EVENT_KEY = "event"


@dataclass(frozen=True, slots=True)
class LinkPosition:
    """Where an invocation stands in its chain."""

    chain: str
    link: int
    """1 for the invocation that began the chain."""
    state: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PartPosition:
    """Which part of a split an invocation runs."""

    index: int
    parts: int


def link_envelope(chain: str, link: int, state: dict[str, Any], event: Any) -> dict[str, Any]:
    """The event of link ``link`` of a chain: its state and the event the chain began with."""
    return {CHAIN_KEY: {"chain": chain, "link": link, "state": state}, EVENT_KEY: event}


def part_envelope(index: int, parts: int, event: Any) -> dict[str, Any]:
    """The event of part ``index`` of ``parts``."""
    return {PART_KEY: {"index": index, "parts": parts}, EVENT_KEY: event}


def opened_link(event: Any) -> tuple[Any, LinkPosition | None]:
    """The event a chain began with and the link's position; the event itself if no link."""
    if not isinstance(event, dict) or set(event) != {CHAIN_KEY, EVENT_KEY}:
        return event, None
    inner = event[CHAIN_KEY]
    if not isinstance(inner, dict):
        return event, None
    chain, link, state = inner.get("chain"), inner.get("link"), inner.get("state")
    if not isinstance(chain, str) or not isinstance(link, int) or not isinstance(state, dict):
        return event, None
    return event[EVENT_KEY], LinkPosition(chain, link, state)


def opened_part(event: Any) -> tuple[Any, PartPosition | None]:
    """The part's own event and its position; the event itself if it is no part."""
    if not isinstance(event, dict) or set(event) != {PART_KEY, EVENT_KEY}:
        return event, None
    inner = event[PART_KEY]
    if not isinstance(inner, dict):
        return event, None
    index, parts = inner.get("index"), inner.get("parts")
    if not isinstance(index, int) or not isinstance(parts, int):
        return event, None
    return event[EVENT_KEY], PartPosition(index, parts)
