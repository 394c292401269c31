"""Messages: what the outbox holds and a channel sends, already rendered."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    """One rendered message for one channel; each channel type uses the parts it needs."""

    id: str
    """Unique and stable: the email Message-ID and the webhook Idempotency-Key."""
    channel: str
    group: str
    kind: str
    """``firing``, ``resolved`` or ``digest``."""
    title: str
    text: str
    html: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    functions: list[str] = field(default_factory=list)
    """The keys of the functions it tells about (a grouped message covers several)."""

    def to_json(self) -> str:
        """The message as JSON text, for the outbox."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Message:
        """Inverse of :meth:`to_json` (a message queued before ``functions`` had none)."""
        return cls(**json.loads(text))
