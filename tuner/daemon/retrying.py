"""Retrying provider calls: bounded attempts, jittered backoff, and a wait budget per call.

Built on tenacity.  A throttled provider's ``Retry-After`` is honoured; a conflict is
never retried blindly (the function changed: it must be re-read and re-planned).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from tuner.domain.errors import ConflictError, ProviderError, ThrottledError

T = TypeVar("T")


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable and not isinstance(exc, ConflictError)


def _wait(retry_state: Any) -> float:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, ThrottledError) and exc.retry_after:
        return float(exc.retry_after)
    return float(wait_random_exponential(multiplier=0.2, max=5.0)(retry_state))


class _over_budget(stop_base):  # noqa: N801 - named like tenacity's own stops
    """A tenacity stop: give up when the next wait would take the call past ``budget_s``."""

    def __init__(self, budget_s: float):
        self.budget_s = budget_s

    def __call__(self, retry_state: Any) -> bool:
        return bool(retry_state.idle_for + retry_state.upcoming_sleep > self.budget_s)


class Retrier:
    """Calls a function with up to ``attempts`` tries and at most ``budget_s`` of waiting."""

    def __init__(
        self,
        attempts: int = 3,
        budget_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.attempts = attempts
        self.budget_s = budget_s
        self._sleep = sleep

    def __call__(self, fn: Callable[[], T]) -> T:
        """The result of ``fn``, retried on retryable provider errors; the last error raises."""
        for attempt in Retrying(
            stop=stop_any(stop_after_attempt(self.attempts), _over_budget(self.budget_s)),
            wait=_wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
            sleep=self._sleep,
        ):
            with attempt:
                return fn()
        raise AssertionError("unreachable")  # pragma: no cover
