"""Who may use the invoke endpoint, how much they may send, and how often.

The endpoint listens on 127.0.0.1, where every local user and every handler the host
runs can connect.  A bearer token guards it: generated once per state folder, kept in
``<state_dir>/local-token`` with mode 0600, so only the daemon's user (and whoever it
shares the file with) can read it.  Invocations are rate limited per function.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

TOKEN_FILE = "local-token"
_TOKEN_BYTES = 32


def load_or_create_token(state_dir: Path) -> tuple[str, Path]:
    """The endpoint's token and its file; a new token when the file is absent or exposed.

    A token file that anyone but its owner could read is replaced: it may have leaked.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / TOKEN_FILE
    try:
        info = path.lstat()
        exposed = not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077
        token = "" if exposed else path.read_text().strip()
        if token:
            return token, path
        log.warning("replacing the invoke endpoint token", path=str(path), exposed=bool(exposed))
        path.unlink()
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    return token, path


def authorized(header: str | None, token: str) -> bool:
    """True when an ``Authorization`` header carries the bearer token (constant time)."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )


class RateLimiter:
    """A token bucket per key (function name): ``rate_per_s`` sustained, ``burst`` at once."""

    def __init__(
        self, rate_per_s: float, burst: int, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._now = now
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """0.0 when one more request may pass now; else seconds until one may."""
        with self._lock:
            now = self._now()
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate_per_s if self.rate_per_s > 0 else 60.0
