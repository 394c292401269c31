"""What the host and its workers exchange: a worker's start spec, what an invocation did.

Values only (and the protocols of the cache and kernel limits a worker is given), so the
host, the pool, the cgroups and the tracing executor share them without the process code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tuner.providers.local.trace_messages import Profile


class SharedCache(Protocol):
    """The host's cache of one function, as a worker's ``cache_get``/``cache_set`` reach it."""

    def get(self, key: str) -> Any:
        """The cached value, or None."""
        ...

    def set(self, key: str, value: Any) -> None:
        """Cache a value."""
        ...


class MemoryLimit(Protocol):
    """A kernel-enforced group for one worker and its children (a cgroup): memory, pids."""

    limits_pids: bool
    """True when the group also caps the number of processes (a pids cgroup)."""

    def add(self, pid: int) -> None:
        """Put the process under the limit."""
        ...

    def exceeded(self) -> bool:
        """True when the kernel hit the limit (the process was killed for memory)."""
        ...

    def members(self) -> list[int]:
        """Every process in the group: the worker and any child it started."""
        ...

    def remove(self) -> None:
        """Release the limit after the process ended."""
        ...


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a worker is started with: one function at one configuration."""

    function: str
    directory: Path
    memory_mb: int
    timeout_s: float
    cache_ttl_s: int
    environment: Mapping[str, str]
    dependencies: Mapping[str, str]
    """Dependency name -> base URL."""
    log_path: Path
    revision: int = 0
    """The deployment these workers run, recorded with every invocation."""
    fused: Mapping[str, WorkerSpec] = field(default_factory=dict)
    """The functions fused into this one, by name: their workers' specs, run in its workers."""


@dataclass(frozen=True, slots=True)
class DependencyCall:
    """One call from a handler to a named dependency."""

    name: str
    time: float
    latency_ms: float
    error: str


@dataclass(frozen=True, slots=True)
class InvokeCall:
    """One call from a handler to another hosted function (``context.invoke``)."""

    name: str
    time: float
    latency_ms: float
    outcome: str
    error: str
    span_id: str = ""


Invoker = Callable[[str, Any], tuple[InvokeCall, Any]]
"""Runs a nested invocation for a worker: how it went, and its result."""


class Remedies(Protocol):
    """What a handler (through tuner_handler) may ask of the host in one invocation."""

    request_id: str
    """The host's id of the invocation, given to the handler as ``aws_request_id``."""

    def hand_over(self, message: dict[str, Any]) -> dict[str, Any]:
        """The reply to a ``handover`` request: the host takes the state, or says why not."""
        ...

    def run(self, message: dict[str, Any]) -> dict[str, Any]:
        """The reply to an ``invoke_parts`` request: each part's outcome and result."""
        ...


@dataclass(slots=True)
class Execution:
    """What one invocation did, as the host saw it."""

    outcome: str
    duration_ms: float
    result: Any = None
    error: str = ""
    peak_memory_mb: float | None = None
    dependency_calls: list[DependencyCall] = field(default_factory=list)
    cache_hits: int = 0
    cache_misses: int = 0
    invoke_calls: list[InvokeCall] = field(default_factory=list)
    trace: Profile | None = None
    """The tracer's last profile of a traced invocation (the worker's word, see tracer.py),
    as the host checked it against the caps when it arrived."""
    counted: bool = True
    """False when something outside the function stopped it: it says nothing of the function."""
    handler_ms: float | None = None
    """How long the handler itself ran, by its worker's clock (the worker's word): evidence
    for traces only, never a measurement of the invocation."""


class LimitFactory(Protocol):
    """Makes a kernel memory limit for a new worker of a given configuration."""

    def __call__(self, spec: WorkerSpec) -> MemoryLimit | None:
        """A limit for a worker started with ``spec``, or None when unavailable."""
        ...
