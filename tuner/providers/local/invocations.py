"""What an invocation through the host gives its caller, and who called it (a nested call).

Values only, shared by the host, its HTTP endpoint and the fan-out of list events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tuner.providers.local.trace_executor import TraceParent


@dataclass(frozen=True, slots=True)
class Caller:
    """The invocation a nested call (``context.invoke``) comes from."""

    parent: TraceParent | None
    """Its trace and the call's span, when the caller is traced."""
    depth: int
    """1 for a call from an invocation made from outside, 2 for a call from that call..."""
    deadline: float
    """The caller's deadline (``time.monotonic()``): no longer is waited for a free worker."""


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """What the caller of an invocation gets back (merged over a fan-out)."""

    function: str
    outcome: str
    result: Any
    error: str
    duration_ms: float
    invocations: int
    """Worker invocations it took: 1, or the number of fan-out parts."""

    def as_json(self) -> dict[str, Any]:
        """The result as the HTTP endpoint returns it."""
        return {
            "function": self.function,
            "outcome": self.outcome,
            "result": self.result,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 3),
            "invocations": self.invocations,
        }


def merge(results: Sequence[Any]) -> Any:
    """Merge fan-out results: lists are concatenated, anything else is listed in order."""
    if all(isinstance(r, list) for r in results):
        return [item for r in results for item in r]
    return list(results)
