"""Fused functions on the host: which function runs inside which caller, and its calls there.

A function fused into its caller (``fused: 1``, the ``fuse`` action) runs in the caller's
workers: the caller's ``context.invoke`` of it is an in-process call (``fused_worker.py``)
instead of a hop through the host to a worker of its own.  :class:`Fusions` keeps which
caller each fused function runs in (``<state_dir>/fusions.json``, so a restart keeps it)
and gives a caller's workers the specs of the functions fused into it; the caller's user
gets its own copy of a fused function's folder where that user could not read it.

:class:`FusedCalls` is the host's side of one invocation's in-process calls.  The worker
says when each begins and ends; the host times it itself, answers the dependency, cache
and nested calls made meanwhile as the fused function's (its dependencies, its cache, its
own records), and records the call as an invocation of the fused function, with a trace of
its own in the caller's trace when the caller is traced.  A fused function shares its
caller's process: its identity, memory and files.  Only a function with one caller is
fused, and ``docs/security.md`` says what that means.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog

from tuner.domain.ports import Clock
from tuner.providers.local.executions import Execution, InvokeCall, Invoker, SharedCache, WorkerSpec
from tuner.providers.local.recording import Records
from tuner.providers.local.sandboxing import Sandbox
from tuner.providers.local.trace_executor import TraceParent, TracePlan, Tracing, new_span_id
from tuner.providers.local.tracing_specs import TracingSpec
from tuner.providers.local.worker_requests import MAX_CALLS, ProtocolError

log = structlog.get_logger(__name__)

FUSIONS_FILE = "fusions.json"
_OUTCOMES = frozenset({"ok", "error", "timeout"})
"""What a fused call may end with: the worker's alarm measures its timeout."""
_MAX_ERROR_CHARS = 2000


class Fusions:
    """Which caller each fused function runs in, persisted; the fused specs a caller's workers get."""

    def __init__(self, state_dir: Path, sandbox: Sandbox, folders: Mapping[str, Path]) -> None:
        self._path = state_dir / FUSIONS_FILE
        self._sandbox = sandbox
        self._folders = folders
        """Each function's own folder, as declared."""
        self._lock = threading.Lock()
        self._into: dict[str, str] = self._load()

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("fusions unreadable: none in force", path=str(self._path), error=str(exc))
            return {}
        if not isinstance(data, dict):
            return {}
        return {
            str(callee): str(caller)
            for callee, caller in data.items()
            if callee in self._folders and caller in self._folders
        }

    def _save(self) -> None:
        partial = self._path.with_suffix(".tmp")
        partial.write_text(json.dumps(self._into, sort_keys=True), encoding="utf-8")
        os.replace(partial, self._path)

    def caller_of(self, callee: str) -> str | None:
        """The caller a function is paired with (fused into, while its ``fused`` is 1)."""
        with self._lock:
            return self._into.get(callee)

    def pair(self, callee: str, caller: str) -> None:
        """Fuse ``callee`` into ``caller`` from its next deployment; ValueError for a cycle."""
        with self._lock:
            if callee == caller or callee in self._chain(caller):
                raise ValueError(f"{callee} calls {caller} through fused functions already")
            self._into[callee] = caller
            self._save()

    def unpair(self, callee: str) -> None:
        """Forget which caller a function ran in (after its ``fused`` went back to 0)."""
        with self._lock:
            if self._into.pop(callee, None) is not None:
                self._save()

    def above(self, name: str) -> list[str]:
        """The callers a function runs in, nearest first (a fused function's caller's caller...)."""
        with self._lock:
            return self._chain(name)

    def _chain(self, name: str) -> list[str]:
        chain: list[str] = []
        current = self._into.get(name)
        while current is not None and current not in chain and current != name:
            chain.append(current)
            current = self._into.get(current)
        return chain

    def specs(
        self, caller: str, spec_of: Callable[[str], WorkerSpec | None]
    ) -> dict[str, WorkerSpec]:
        """The functions fused into ``caller``, each with a folder the caller's user can read.

        ``spec_of`` gives a paired function's worker spec while it is fused, else None.
        """
        with self._lock:
            paired = sorted(c for c, into in self._into.items() if into == caller)
        found: dict[str, WorkerSpec] = {}
        for callee in paired:
            spec = spec_of(callee)
            if spec is not None:
                folder = self._sandbox.reachable(
                    self._folders[callee], caller, into=f"{caller}+{callee}"
                )
                found[callee] = replace(spec, directory=folder)
        return found


def fused_init(spec: WorkerSpec) -> dict[str, Any]:
    """What a caller's worker is told of the functions fused into it (its ``init``'s ``fused``)."""
    if not spec.fused:
        return {}
    return {"keys": sorted(spec.environment), "functions": _declared(spec.fused)}


def _declared(fused: Mapping[str, WorkerSpec]) -> dict[str, Any]:
    return {
        name: {
            "directory": str(spec.directory),
            "timeout_s": spec.timeout_s,
            "cache": spec.cache_ttl_s > 0,
            "environment": dict(spec.environment),
            "dependencies": dict(spec.dependencies),
            "fused": _declared(spec.fused),
        }
        for name, spec in fused.items()
    }


@dataclass(frozen=True)
class FusionServices:
    """What the host lends an invocation's fused calls: records, traces, caches, nested calls."""

    records: Records
    tracing: Tracing | None
    caches: Mapping[str, SharedCache]
    tracing_spec: Callable[[str], TracingSpec | None]
    nested: Callable[[TracePlan | None, int, float], Invoker]
    """An invoker for a fused function's own ``context.invoke`` of a function not fused."""
    clock: Clock
    closing: Callable[[], bool]


@dataclass
class _Open:
    """A fused call under way."""

    spec: WorkerSpec
    started: float
    """``time.monotonic()`` when the host heard it begin."""
    start: float
    """The clock's time then."""
    records: int | None
    plan: TracePlan | None
    span_id: str
    invoker: Invoker
    execution: Execution = field(default_factory=lambda: Execution(outcome="", duration_ms=0.0))


class FusedCalls:
    """The host's side of one invocation's in-process calls to functions fused into it."""

    def __init__(
        self,
        spec: WorkerSpec,
        services: FusionServices,
        plan: TracePlan | None,
        depth: int,
        deadline: float,
    ) -> None:
        self._spec = spec
        self._services = services
        self._plan = plan
        self._depth = depth
        self._deadline = deadline
        self._open: list[_Open] = []
        self._done: list[tuple[_Open, float]] = []
        """Calls that ended, with the clock's time then: recorded once the invocation is over,
        so that the host answers the worker without a pause meanwhile."""

    def handles(self, message: Mapping[str, Any], execution: Execution) -> bool:
        """Act on a ``fused_begin`` or ``fused_end``; False for any other message."""
        kind = message["type"]
        if kind == "fused_begin":
            self._begin(message)
        elif kind == "fused_end":
            self._end(message, execution)
        else:
            return False
        return True

    def scope(
        self, kind: str, execution: Execution, cache: SharedCache, invoker: Invoker | None
    ) -> tuple[Execution, SharedCache, Invoker | None, WorkerSpec]:
        """Whose call a message is: the innermost fused call under way, else the invocation's."""
        if not self._open:
            return execution, cache, invoker, self._spec
        if kind == "result":
            raise ProtocolError("a result while a fused call is under way")
        top = self._open[-1]
        return top.execution, self._services.caches[top.spec.function], top.invoker, top.spec

    def _begin(self, message: Mapping[str, Any]) -> None:
        name, records = message.get("name"), message.get("records")
        fused = (self._open[-1].spec if self._open else self._spec).fused
        if not isinstance(name, str) or name not in fused:
            raise ProtocolError(f"{str(name)[:60]!r} is not fused into this function")
        if records is not None and (type(records) is not int or records < 0):
            raise ProtocolError("a fused call's records must be a count")
        spec = fused[name]
        parent = self._open[-1].plan if self._open else self._plan
        span_id = new_span_id()
        plan = None
        tracing = self._services.tracing
        if parent is not None and tracing is not None:
            via = TraceParent(parent.trace_id, span_id)
            plan = tracing.plan(name, self._services.tracing_spec(name), spec.revision, via)
        depth = self._depth + len(self._open) + 1
        self._open.append(
            _Open(
                spec=spec,
                started=time.monotonic(),
                start=self._services.clock.now(),
                records=records,
                plan=plan,
                span_id=span_id,
                invoker=self._services.nested(plan, depth + 1, self._deadline),
            )
        )

    def _end(self, message: Mapping[str, Any], execution: Execution) -> None:
        if not self._open:
            raise ProtocolError("a fused call ended that never began")
        outcome = message.get("outcome")
        if outcome not in _OUTCOMES:
            raise ProtocolError(f"a fused call may not end with {str(outcome)[:40]!r}")
        top = self._open.pop()
        top.execution.outcome = str(outcome)
        top.execution.error = str(message.get("error", ""))[:_MAX_ERROR_CHARS]
        self._finish(top, self._open[-1].execution if self._open else execution)

    def close(self, execution: Execution) -> None:
        """The invocation is over: record its fused calls; one still under way ended with it."""
        while self._open:
            top = self._open.pop()
            top.execution.outcome = "error"
            top.execution.error = f"its caller's worker ended during the call ({execution.outcome})"
            self._finish(top, self._open[-1].execution if self._open else execution)
        services = self._services
        for call, end in self._done:
            if services.closing():
                break
            done, name, revision = call.execution, call.spec.function, call.spec.revision
            services.records.add_execution(name, revision, call.start, end, call.records, done)
            if call.plan is not None and services.tracing is not None:
                services.tracing.finish(call.plan, name, revision, done)
        self._done.clear()

    def _finish(self, call: _Open, parent: Execution) -> None:
        """Time the call and note it in its caller's execution; it is recorded at the end."""
        done = call.execution
        done.duration_ms = done.handler_ms = (time.monotonic() - call.started) * 1000
        if len(parent.invoke_calls) < MAX_CALLS:
            name = call.spec.function
            parent.invoke_calls.append(
                InvokeCall(
                    name, time.time(), done.duration_ms, done.outcome, done.error, call.span_id
                )
            )
        self._done.append((call, self._services.clock.now()))
