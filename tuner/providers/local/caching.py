"""The platform cache of one function: a time-to-live map shared by all its workers."""

from __future__ import annotations

import json
import threading
from typing import Any

from tuner.domain.ports import Clock

MAX_BYTES = 64 * 1024 * 1024
"""What one function's cache may hold (values as JSON); the oldest entries go first."""


class TtlCache:
    """Values that expire ``ttl_s`` seconds after they were set; a TTL of 0 caches nothing.

    Handlers fill it, so it is bounded: at most ``max_bytes`` of values (as JSON).
    """

    def __init__(self, clock: Clock, ttl_s: int = 0, max_bytes: int = MAX_BYTES) -> None:
        self._clock = clock
        self._ttl_s = ttl_s
        self._max_bytes = max_bytes
        self._entries: dict[str, tuple[float, Any, int]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        """Bytes held now (values as JSON)."""
        return self._bytes

    @property
    def ttl_s(self) -> int:
        """Seconds a value stays cached; 0 means the cache is off."""
        return self._ttl_s

    def configure(self, ttl_s: int) -> None:
        """Change the TTL; turning the cache off drops every entry."""
        with self._lock:
            self._ttl_s = ttl_s
            if ttl_s <= 0:
                self._entries.clear()
                self._bytes = 0

    def get(self, key: str) -> Any:
        """The live value for ``key``, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value, size = entry
            if expires <= self._clock.now():
                del self._entries[key]
                self._bytes -= size
                return None
            return value

    def set(self, key: str, value: Any) -> None:
        """Cache ``value`` under ``key`` (ignored while the cache is off)."""
        size = len(key) + len(json.dumps(value))
        with self._lock:
            if self._ttl_s <= 0 or size > self._max_bytes:
                return
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            while self._entries and self._bytes + size > self._max_bytes:
                oldest = next(iter(self._entries))
                self._bytes -= self._entries.pop(oldest)[2]
            self._entries[key] = (self._clock.now() + self._ttl_s, value, size)
            self._bytes += size
