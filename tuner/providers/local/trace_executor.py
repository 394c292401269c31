"""The tracing executor on the host side: which invocations to trace, and their traces.

``tracing: {mode: off | sample | full, sample_rate: 0.1}`` in a ``function.yaml`` (or as
the provider's default in ``tuner.yaml``) decides which invocations are traced: ``full``
traces every one, ``sample`` a random share plus the first of every deployed revision (so
each configuration has evidence), ``off`` none.  A nested call (``context.invoke``) from a
traced invocation is traced too, in the same trace.  The ``trace`` action raises a function's tracing for a
while (``trace_switches.py``).  The worker's tracer (``tracer.py``)
samples the handler; this module adds the spans the host saw (dependency calls, nested
calls), stores the trace in a bounded ring per function and summarises traces into facts.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.domain.errors import ProviderError
from tuner.domain.model import Change
from tuner.providers.local.executions import DependencyCall, Execution, InvokeCall
from tuner.providers.local.trace_messages import Profile
from tuner.providers.local.trace_switches import TraceSwitches
from tuner.providers.local.tracing_specs import TracingSpec
from tuner.trace.model import (
    Span,
    Trace,
)
from tuner.trace.storing import TraceStore

IN_WORKER = "tuner.duration_ms"
"""The root span's attribute holding the invocation's duration in its worker, as the host
measured it (the tracer's work included, the wait for a worker and its start not)."""
OWN_DURATION = "tuner.handler_ms"
"""The root span's attribute holding how long the handler itself ran (by its worker's
clock; the host's measure when it has none): the invocation's own work, against which a
caller's wait for it is set to measure the invocation's overhead."""
MEMORY_PRESSURE = 0.5
"""A function whose last traced invocation ran out of memory or peaked at this share of
its limit has its allocation sites followed; below it, they would explain nothing."""
MEMORY_ROOM = 0.05
"""...unless that peak left less than this share of the limit: following allocations takes
up to 2% of it (the tracer's share), and the next invocation may need more than the last,
so it could fail where it would have passed untraced."""


@dataclass(frozen=True, slots=True)
class TraceParent:
    """The trace and span a nested invocation belongs to."""

    trace_id: str
    span_id: str


@dataclass(frozen=True, slots=True)
class TracePlan:
    """One invocation chosen for tracing: its ids and its spec."""

    trace_id: str
    span_id: str
    parent_span_id: str
    spec: TracingSpec
    started: float
    allocations: bool = False
    """Follow this invocation's allocation sites."""

    def options(self) -> dict[str, Any]:
        """What the worker's tracer is started with."""
        return {
            "interval_ms": self.spec.interval_ms,
            "memory": self.spec.memory,
            "allocations": self.allocations,
            "max_depth": self.spec.max_depth,
            "max_nodes": self.spec.max_nodes,
        }


def new_span_id() -> str:
    """A random 64-bit span id in hex (OpenTelemetry's form)."""
    return secrets.token_hex(8)


class Tracing:
    """Chooses the invocations to trace and turns what they left into stored traces."""

    def __init__(
        self,
        root: Path,
        default: TracingSpec,
        seed: int | None = None,
        forward: Callable[[Trace], None] | None = None,
    ) -> None:
        self.default = default
        self.forward = forward
        """Also sends every stored trace on (to an OpenTelemetry collector)."""
        self.store = TraceStore(root.resolve(), keep=default.keep)  # workers run elsewhere
        self.switches = TraceSwitches(root.resolve() / "switches.json")
        """Tracing raised for a while by the ``trace`` action; the host ends it itself."""
        self._random = random.Random(seed)
        self._traced_revisions: set[tuple[str, int]] = set()
        self._pressured: set[str] = set()
        """Functions whose last traced invocation was under memory pressure."""
        self._lock = threading.Lock()

    def plan(
        self, function: str, spec: TracingSpec | None, revision: int, parent: TraceParent | None
    ) -> TracePlan | None:
        """A plan when this invocation is to be traced, else None.

        Every invocation counts towards a tracing switch of its function (``trace``).
        """
        spec = self.switches.take(function, spec or self.default)
        if parent is None and not self._chosen(function, spec, revision):
            return None
        trace_id = parent.trace_id if parent is not None else secrets.token_hex(16)
        span_id = new_span_id()
        return TracePlan(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent.span_id if parent is not None else "",
            spec=spec,
            started=time.time(),
            allocations=(
                spec.memory
                and function in self._pressured
                and self._random.random() < spec.allocations
            ),
        )

    def switched(self, function: str, spec: TracingSpec | None) -> float:
        """The share of a function's invocations traced for a while now (0: none)."""
        return self.switches.rate(function, spec or self.default)

    def _chosen(self, function: str, spec: TracingSpec, revision: int) -> bool:
        if spec.mode == "off":
            return False
        if spec.mode == "full":
            return True
        with self._lock:
            first = (function, revision) not in self._traced_revisions
            self._traced_revisions.add((function, revision))
            return first or self._random.random() < spec.sample_rate

    def finish(self, plan: TracePlan, function: str, revision: int, execution: Execution) -> Trace:
        """Build the trace from the tracer's last message and the host's view, store it.

        The outcome, error and child spans are the host's; the call tree, exception and
        memory are the tracer's, in the worker, as the host checked them when they came
        (``trace_messages.py``): a malformed profile is left out, one over the caps is
        cut, and the root span says what was cut or left out (``tuner.trace_cut``).
        """
        ended = time.time()
        profile = execution.trace or Profile()
        cut = profile.cut
        fields = {**profile.fields, **({"complete": False} if cut else {})}
        attributes: dict[str, str | float | int | bool] = {
            "faas.name": function,
            "tuner.outcome": execution.outcome,
            IN_WORKER: round(execution.duration_ms, 3),
            OWN_DURATION: round(_own(execution), 3),
        }
        if cut:
            attributes["tuner.trace_cut"] = "; ".join(cut)
        spans = [
            Span(
                span_id=plan.span_id,
                parent_id=plan.parent_span_id,
                name=function,
                kind="function",
                start=plan.started,
                end=ended,
                error=execution.error,
                attributes=attributes,
            )
        ]
        for call in execution.dependency_calls[: plan.spec.max_spans]:
            spans.append(
                _child(plan, f"{call.name}.get", "dependency", call, {"peer.service": call.name})
            )
        for nested in execution.invoke_calls[: plan.spec.max_spans]:
            attributes = {"faas.invoked_name": nested.name, "tuner.outcome": nested.outcome}
            spans.append(_child(plan, f"invoke {nested.name}", "invoke", nested, attributes))
        trace = Trace(
            trace_id=plan.trace_id,
            span_id=plan.span_id,
            parent_span_id=plan.parent_span_id,
            function=function,
            revision=revision,
            start=plan.started,
            end=ended,
            outcome=execution.outcome,
            error=execution.error,
            spans=tuple(spans),
            **fields,
        )
        self._note_pressure(trace)
        self.store.save(trace, keep=plan.spec.keep)
        if self.forward is not None:
            self.forward(trace)
        return trace

    def _note_pressure(self, trace: Trace) -> None:
        memory = trace.memory
        if memory is None:
            return
        limit = max(memory.limit_mb, 0.0)
        pressured = trace.outcome == "oom" or (
            MEMORY_PRESSURE * limit <= memory.peak_mb <= (1.0 - MEMORY_ROOM) * limit
        )
        with self._lock:
            (self._pressured.add if pressured else self._pressured.discard)(trace.function)


UNTIMED_SWITCH_S = 600.0
"""How long a tracing switch lasts when its change says nothing (one approved by hand)."""


def switch_tracing(
    tracing: Tracing, function: str, spec: TracingSpec | None, change: Change
) -> float:
    """Carry out a ``tracing`` change: switch tracing on for a while, or off; the share now."""
    rate = float(change.after)
    if not 0.0 <= rate <= 1.0:
        raise ProviderError(f"tracing {rate:g} is not a share of the invocations (0..1)")
    if rate == 0.0:
        tracing.switches.clear(function)
        return 0.0
    lasting = change.lasting
    invocations = lasting.invocations if lasting is not None else None
    seconds = lasting.seconds if lasting is not None else None
    if invocations is None and seconds is None:
        seconds = UNTIMED_SWITCH_S
    own = spec or tracing.default
    tracing.switches.set(function, rate, own, invocations=invocations, seconds=seconds)
    return rate


def _own(execution: Execution) -> float:
    """The invocation's own duration: the handler's time where its worker said, else the host's."""
    took = execution.handler_ms
    return took if took is not None and took <= execution.duration_ms else execution.duration_ms


def _child(
    plan: TracePlan,
    name: str,
    kind: str,
    call: DependencyCall | InvokeCall,
    attributes: Mapping[str, str | float | int | bool],
) -> Span:
    """The span of one outbound call, from when the host heard it ended and its latency."""
    return Span(
        span_id=getattr(call, "span_id", "") or new_span_id(),
        parent_id=plan.span_id,
        name=name,
        kind=kind,
        start=call.time - call.latency_ms / 1000,
        end=call.time,
        error=call.error,
        attributes=attributes,
    )
