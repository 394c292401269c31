"""Handover and split on the local host: what a worker's tuner_handler asks, and what follows.

Every invocation gets a :class:`Session`.  Its handler (through tuner_handler) may ask
once to hand its state over (``handover``) or to run its parts (``invoke_parts``); the
host checks each request against the function's live settings (handover on, within the
chain's most links, an envelope within Lambda's asynchronous limit; no more parts than
its ``fan_out``, or :data:`MOST_PARTS` where large events split), never taking the
worker's word for where the chain stands: the host knows which link it started.  When
the invocation ends, :meth:`Decomposition.finish` writes what follows to the chain store
in one transaction: the next link waits, the chain is done with its result, or a failed
link waits for a retry or fails the chain.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tuner.domain.model import FunctionConfig, new_id
from tuner.domain.ports import Clock
from tuner.providers.local.chain_runner import ChainRunner
from tuner.providers.local.chain_store import ChainStore, LinkRef, LinkTask, Split
from tuner.providers.local.executions import Execution
from tuner.providers.local.specs import FunctionSpec
from tuner_handler.envelopes import link_envelope, opened_link
from tuner_handler.settings import (
    ASYNC_PAYLOAD_BYTES,
    FAN_OUT_ENV,
    HANDOVER_ENV,
    MAX_LINKS_ENV,
    SPLIT_ABOVE_ENV,
)

HANDOVER, SPLIT = "handover", "split"
REMEDIES = frozenset({HANDOVER, SPLIT})
"""What a handler may say it supports (tuner_handler's decorators)."""
MOST_PARTS = 16
"""The most parts one invocation may split into on the local host."""
RETRY_S = 1.0
"""A failed link waits this long times its attempts before it runs again."""

RunParts = Callable[[list[Any]], list[Execution]]


@dataclass(frozen=True, slots=True)
class Traits:
    """What the host learnt of a function's handler when a worker of it started."""

    supports: frozenset[str]
    """The remedies its code supports, as tuner_handler marked the handler."""
    runtime_mb: float | None
    """Resident memory of a worker with its handler loaded: the part no split divides."""


class Session:
    """One invocation's dealings with the remedies, from its start to its end."""

    def __init__(
        self,
        name: str,
        event: Any,
        link: LinkTask | None,
        config: FunctionConfig,
        spec: FunctionSpec,
        started: float,
    ) -> None:
        self.name = name
        self.request_id = new_id()
        """The host's id of this invocation; a chain it begins is named by it."""
        self.link = link
        self.started = started
        self.event = link.event if link is not None else opened_link(event)[0]
        """The event the invocation's chain began with (its own, as tuner_handler reads it)."""
        self._config = config
        self._spec = spec
        self.run_parts: RunParts | None = None
        """Runs the parts (set by the host once the invocation has its worker and deadline)."""
        self.handed_over: dict[str, Any] | None = None
        self.refused = ""
        """Why a hand-over was refused (the chain then fails without a retry)."""
        self.parts: list[Execution] | None = None

    @property
    def position(self) -> LinkRef:
        """This invocation's place in its chain (link 1 of its own, if it begins one)."""
        return self.link.ref if self.link is not None else LinkRef(self.request_id, 1)

    def hand_over(self, message: dict[str, Any]) -> dict[str, Any]:
        """Take the handler's state for the next link, or say why not."""
        state = message.get("state")
        following = self.position.link + 1
        if not self._config.handover_s:
            why = "handover is off for this function (handover_s 0)"
        elif self.handed_over is not None:
            why = "an invocation hands over once"
        elif not isinstance(state, dict):
            why = "the state must be a JSON object"
        elif following > self._spec.chain.max_links:
            why = f"the chain reached its most links ({self._spec.chain.max_links})"
        else:
            envelope = link_envelope(self.position.chain, following, state, self.event)
            size = len(json.dumps(envelope, separators=(",", ":")).encode())
            why = (
                f"the next link's event is {size:,} bytes, over the {ASYNC_PAYLOAD_BYTES:,} a"
                " hand-over may carry (Lambda's asynchronous limit)"
                if size > ASYNC_PAYLOAD_BYTES
                else ""
            )
        if why:
            self.refused = why
            return {"type": "handover_reply", "accepted": False, "error": why}
        self.handed_over = state
        return {
            "type": "handover_reply",
            "accepted": True,
            "chain": self.position.chain,
            "link": following,
        }

    def run(self, message: dict[str, Any]) -> dict[str, Any]:
        """Run the handler's parts as invocations of the function, in parallel."""
        events = message.get("events")
        most, by = self._config.fan_out or 1, "fan_out"
        if self._config.split_above_kb:
            most, by = max(most, MOST_PARTS), "split_above_kb"
        if not isinstance(events, list) or not 2 <= len(events) <= most:
            return {"type": "parts_result", "error": f"a split runs 2 to {most} parts ({by})"}
        if self.parts is not None or self.run_parts is None:
            return {"type": "parts_result", "error": "an invocation splits once"}
        self.parts = self.run_parts(events)
        return {
            "type": "parts_result",
            "parts": [
                {"outcome": p.outcome, "result": p.result, "error": p.error} for p in self.parts
            ],
        }


class Decomposition:
    """The host's side of handover and split: sessions, the chain store and its runner."""

    def __init__(
        self,
        store: ChainStore,
        clock: Clock,
        specs: dict[str, FunctionSpec],
        deliver: Callable[[LinkTask], object],
        in_flight: int,
    ) -> None:
        self.store = store
        self._clock = clock
        self._specs = specs
        self._traits: dict[str, Traits] = {}
        self._runner = ChainRunner(store, clock, deliver, in_flight)

    def start(self) -> None:
        """Resume the chains a previous host left (their running links run again)."""
        self._runner.start(sorted(self._specs))

    def stop(self) -> None:
        """Start no more links (those the host then cuts short wait for its next start)."""
        self._runner.stop(wait_s=0.0)

    def close(self) -> None:
        """Wait a while for the links still running, then close the store."""
        self._runner.stop()
        self.store.close()

    def session(
        self,
        name: str,
        event: Any,
        link: LinkTask | None,
        config: FunctionConfig,
    ) -> Session:
        """A new invocation's session (``link``: the chain's link it runs, if the host started one)."""
        return Session(name, event, link, config, self._specs[name], self._clock.now())

    def note(self, name: str, supports: frozenset[str], runtime_mb: float | None) -> None:
        """What a new worker showed of the function's handler."""
        self._traits[name] = Traits(supports & REMEDIES, runtime_mb)

    def traits(self, name: str) -> Traits | None:
        """What the latest worker showed of the function's handler (None before any started)."""
        return self._traits.get(name)

    def splits_itself(self, name: str) -> bool:
        """True when the function's handler splits its events itself (tuner_handler's split)."""
        traits = self._traits.get(name)
        return traits is not None and SPLIT in traits.supports

    def environment(self, name: str, config: FunctionConfig) -> dict[str, str]:
        """The settings tuner_handler reads, from the live configuration."""
        return {
            HANDOVER_ENV: f"{config.handover_s or 0.0:g}",
            MAX_LINKS_ENV: str(self._specs[name].chain.max_links),
            FAN_OUT_ENV: str(config.fan_out or 1),
            SPLIT_ABOVE_ENV: str(config.split_above_kb or 0),
        }

    def finish(self, session: Session, execution: Execution) -> None:
        """Write what follows the invocation: the next link, the chain's end, a retry, a split."""
        now = self._clock.now()
        if session.parts is not None:
            failed = sum(1 for p in session.parts if p.outcome != "ok")
            merged = execution.outcome == "ok" and not failed
            split = Split(session.name, now, len(session.parts), failed, merged)
            self.store.add_split(split, session.request_id, session.started)
        ok = execution.outcome == "ok"
        if ok and session.handed_over is not None:
            if session.link is None:
                self.store.begin(
                    session.position, session.name, session.event, session.handed_over, now
                )
            else:
                self.store.advance(session.link.ref, session.handed_over, now)
            self._runner.wake()
        elif session.link is None:
            return
        elif ok:
            self.store.finish(session.link.ref, execution.result, now)
        else:
            retries = self._specs[session.name].chain.retries
            again = session.link.attempt <= retries and not session.refused
            why = session.refused or (
                f"link {session.link.ref.link}: {execution.outcome}: {execution.error}"
            )
            retry_at = now + RETRY_S * session.link.attempt if again else None
            self.store.fail(session.link.ref, why, now, retry_at)
