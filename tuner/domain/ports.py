"""Protocols through which the core talks to the world.

Providers, metric sources, notifiers and stores implement these; the core depends on
nothing else.  All ports are synchronous: the loop runs them in worker threads, and
asynchronous frameworks (Kopf) call the core through ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from tuner.domain.decisions import Decision, Intent
from tuner.domain.lifecycle import IntentState
from tuner.domain.model import Change, FunctionConfig, FunctionRef, Target, WindowFacts


@runtime_checkable
class TargetSource(Protocol):
    """Lists the functions a provider manages."""

    name: str

    def targets(self) -> Sequence[Target]:
        """Every managed function with its current configuration."""
        ...


@runtime_checkable
class MetricSource(Protocol):
    """Observes functions over a time window."""

    def observe(
        self, targets: Sequence[Target], start: float, end: float
    ) -> Mapping[FunctionRef, WindowFacts]:
        """Facts for each target over ``[start, end)``; a target without data may be absent.

        Implementations batch their queries: one call covers the whole fleet.
        """
        ...


@runtime_checkable
class Actuator(Protocol):
    """Changes functions."""

    def read(self, ref: FunctionRef) -> FunctionConfig:
        """The live configuration of one function."""
        ...

    def apply(
        self, target: Target, changes: Sequence[Change], *, reason: str = ""
    ) -> FunctionConfig:
        """Apply the changes and wait until they are live; return the new configuration.

        ``reason`` says why, for providers that can record it on the function (an
        annotation, an event, a deployment record).

        Idempotent: applying changes that are already live is a no-op.  Uses the
        target's ``config.revision`` for optimistic concurrency and raises
        :class:`tuner.domain.errors.ConflictError` when the function changed meanwhile.
        """
        ...


@runtime_checkable
class Provider(TargetSource, MetricSource, Actuator, Protocol):
    """A platform that runs functions: it lists, observes and changes them."""


@runtime_checkable
class Urgent(Protocol):
    """A provider that hears of invocations killed for memory as they happen (optional).

    A host that runs the functions itself sees each outcome at once; the scheduler then
    runs a cycle for those functions before the window ends
    (:class:`tuner.daemon.scheduling.EarlyCycles`).
    """

    def urgent_since(self, since: float) -> Mapping[FunctionRef, float]:
        """Functions with an invocation killed for memory since ``since``, and when the first was."""
        ...


@runtime_checkable
class Promoting(Protocol):
    """A provider that may try a change on a share of traffic before it is final (optional).

    Such a provider's ``apply`` may start the change on part of the traffic (a canary); the
    change is then judged on that part alone, and a rollback routes all traffic back.
    """

    def promote(self, ref: FunctionRef, decision: Decision) -> str:
        """Make a change judged to stay final for all traffic; return what was done ('' nothing).

        Never promotes over a person's change: then nothing is done and the note says so.
        Raises :class:`tuner.domain.errors.ProviderError` when it could not be done (tried again
        with the next window's verdict).
        """
        ...

    def abandon(self, ref: FunctionRef, changes: Sequence[Change]) -> str:
        """Put back what an apply interrupted by a crash left half-done; return what was done."""
        ...


@runtime_checkable
class Notifier(Protocol):
    """Tells people about decisions; must never block the loop for long."""

    def notify(self, decisions: Sequence[Decision]) -> None:
        """Queue the decisions for delivery (grouping and retries are the notifier's job)."""
        ...


@runtime_checkable
class Clock(Protocol):
    """The time source, so tests and simulations can run on a virtual clock."""

    def now(self) -> float:
        """POSIX seconds."""
        ...


@dataclass(frozen=True, slots=True)
class CycleRecord:
    """What one cycle writes at once: verifications as they are, the decisions it made counted.

    A decision in ``made`` that says the same as in the previous cycle (at most
    ``max_gap_s`` before) is counted on its record (:mod:`tuner.decisions.repeats`), not
    written again.  ``state`` is loop state saved with them.
    """

    at: float
    writes: list[Decision]
    made: list[Decision]
    state: Mapping[str, str]
    max_gap_s: float


@runtime_checkable
class DecisionStore(Protocol):
    """The audit log of decisions: every decision, acted on or not, and what became of it."""

    def record(self, decision: Decision) -> None:
        """Write a decision in its current state (insert or replace by id)."""
        ...

    def record_many(self, decisions: list[Decision]) -> None:
        """Write several decisions at once (one transaction where the store has them)."""
        ...

    def record_cycle(self, record: CycleRecord) -> list[Decision]:
        """Write a cycle's record at once; return its ``made`` as recorded (see CycleRecord)."""
        ...

    def decisions(
        self, ref: FunctionRef | None = None, since: float | None = None, limit: int = 1000
    ) -> list[Decision]:
        """Decisions, oldest first, optionally for one function and after a time."""
        ...

    def get(self, decision_id: str) -> Decision | None:
        """One decision by id."""
        ...

    def applied_since(self, since: float, *, with_facts: bool = True) -> list[Decision]:
        """Decisions after a time whose change is, was or may be live, oldest first.

        ``with_facts=False`` skips decoding the facts, for callers that only count changes.
        """
        ...

    def pending_verification(self) -> list[Decision]:
        """Changes that went live and have not been judged yet, oldest first."""
        ...

    def unsettled_rollbacks(self) -> list[Decision]:
        """Rollbacks that went live but whose reversed change is not yet marked rolled back."""
        ...

    def prune(self, before: float) -> int:
        """Delete decisions older than ``before``, keeping unfinished work; return how many."""
        ...


@runtime_checkable
class IntentStore(Protocol):
    """Changes written down before they are applied, so a crash leaves a record."""

    def begin_intent(self, intent: Intent, decision: Decision) -> None:
        """Write down a change and its decision (state applying) before it is applied."""
        ...

    def finish_intent(self, intent_id: str, state: IntentState, decision: Decision) -> None:
        """Mark an intent done, failed or abandoned and record the final decision, at once."""
        ...

    def open_intents(self) -> list[Intent]:
        """Intents that were begun and never finished (a crash happened in between)."""
        ...


@runtime_checkable
class StateStore(Protocol):
    """Small pieces of the loop's durable state (JSON text by key): streaks, pauses."""

    def get_state(self, key: str) -> str | None:
        """A small piece of loop state by key."""
        ...

    def put_state(self, key: str, value: str) -> None:
        """Store a small piece of loop state."""
        ...

    def delete_state(self, key: str) -> None:
        """Forget a piece of loop state."""
        ...


@runtime_checkable
class FleetStore(Protocol):
    """Each function as last seen, so that the fleet outlives the daemon (one row a function)."""

    def remember_functions(self, seen: float, facts: Mapping[str, Mapping[str, Any]]) -> None:
        """Keep these functions' facts (by key) as seen at ``seen``."""
        ...

    def functions(self) -> dict[str, tuple[float, dict[str, Any]]]:
        """Every function remembered, by key: when it was last seen and its facts then."""
        ...


@runtime_checkable
class Store(DecisionStore, IntentStore, StateStore, FleetStore, Protocol):
    """The audit log and the loop's durable state: decisions, intents, loop state, the fleet."""


@runtime_checkable
class Startable(Protocol):
    """A part that starts before the first cycle (a host, a notifier's delivery thread)."""

    def start(self) -> None:
        """Start; called once, before the first cycle."""
        ...


@runtime_checkable
class Closable(Protocol):
    """A part that holds resources until it is closed."""

    def close(self) -> None:
        """Release what it holds; called once, at shutdown."""
        ...


@runtime_checkable
class Flushable(Protocol):
    """A notifier that holds messages back (grouping) and can send them at once."""

    def flush(self, timeout: float = 10.0, include_waiting: bool = False) -> int:
        """Send what is due (with ``include_waiting``, what still waits too) within ``timeout``
        seconds; return how many messages are still queued."""
        ...
