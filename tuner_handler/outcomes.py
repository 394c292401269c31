"""What a platform answers the library: how a part ended, or why it refused; and its shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Refused(Exception):
    """The platform would not take the hand-over or the parts; the message says why."""


@dataclass(frozen=True, slots=True)
class PartOutcome:
    """How one part's invocation ended: ``ok`` with its result, or how it failed."""

    outcome: str
    result: Any = None
    error: str = ""


class Platform(Protocol):
    """What a platform does for the library."""

    def hand_over(
        self, context: Any, chain: str, link: int, state: dict[str, Any], event: Any
    ) -> tuple[str, int]:
        """Start link ``link`` of the chain with ``state`` (:class:`Refused` if it cannot);
        returns the chain and link that go on, as the platform records them."""
        ...

    def run_parts(self, context: Any, events: list[Any]) -> list[PartOutcome]:
        """Run each event as its own invocation of this function, in parallel."""
        ...
