"""The platform cache of one function: a time-to-live map shared by all its workers."""

from __future__ import annotations

import threading
from typing import Any

from tuner.ports import Clock


class TtlCache:
    """Values that expire ``ttl_s`` seconds after they were set; a TTL of 0 caches nothing."""

    def __init__(self, clock: Clock, ttl_s: int = 0) -> None:
        self._clock = clock
        self._ttl_s = ttl_s
        self._entries: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

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

    def get(self, key: str) -> Any:
        """The live value for ``key``, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires <= self._clock.now():
                del self._entries[key]
                return None
            return value

    def set(self, key: str, value: Any) -> None:
        """Cache ``value`` under ``key`` (ignored while the cache is off)."""
        with self._lock:
            if self._ttl_s > 0:
                self._entries[key] = (self._clock.now() + self._ttl_s, value)
