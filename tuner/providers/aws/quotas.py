"""A token bucket that keeps tuner under an API's request-rate quota."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Allows ``rate`` requests per second on average, with bursts of up to ``burst``.

    Thread-safe; :meth:`acquire` blocks until a token is free.  The clock and the sleep
    function are injectable so that tests can run on virtual time.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting until it is due; return the seconds waited.

        A caller that finds the bucket empty reserves the next token (the level goes
        below zero) and sleeps outside the lock until it is due, so later callers queue
        behind it in order.
        """
        with self._lock:
            now = self._monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            pause = max(0.0, -self._tokens / self.rate)
        if pause:
            self._sleep(pause)
        return pause
