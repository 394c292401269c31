"""Tracing switched on for a while (the ``trace`` action), ended by the host itself.

A switch raises one function's tracing to a share of its invocations (1: all) for its
next N invocations or until a time, above the function's own setting (``tracing:`` in
``function.yaml``, else the provider's default in ``tuner.yaml``).  The host counts the
invocations and ends the switch itself; tuner's loop only learns that it ended.

Switches are kept in one JSON file, rewritten whole (write, then rename) at each change,
so a restart of the daemon neither forgets a switch nor leaves tracing on: a switch whose
time has passed is dropped when it is next read, and every switch has a time (one counted
in invocations ends at the latest :data:`COUNTED_AT_MOST_S` after it was set, so a function
that stops being called is not left traced).  Each switch remembers the function's own
setting when it was set: when that setting has changed since, a person changed it, and the
switch is dropped so that theirs stands (it is never put back).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog

from tuner.providers.local.tracing_specs import TracingSpec

log = structlog.get_logger(__name__)

COUNTED_AT_MOST_S = 3600.0
"""A switch counted in invocations ends after this long even if they never came."""


@dataclass(frozen=True, slots=True)
class Switch:
    """Tracing raised for one function until a time or for a number of invocations."""

    rate: float
    """Share of invocations traced while it lasts (1: every one)."""
    until: float
    """When it ends at the latest (POSIX seconds)."""
    invocations: int | None
    """Invocations it still covers; None: it lasts until ``until``."""
    own: dict[str, Any]
    """The function's own tracing setting when the switch was set."""
    set_at: float


def _own(spec: TracingSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json")


def raised(own: TracingSpec, rate: float) -> TracingSpec:
    """The function's own setting, tracing at least ``rate`` of its invocations."""
    if own.mode == "full" or (own.mode == "sample" and own.sample_rate >= rate):
        return own
    if rate >= 1.0:
        return own.model_copy(update={"mode": "full"})
    return own.model_copy(update={"mode": "sample", "sample_rate": rate})


class TraceSwitches:
    """The switches in force, by function, kept in ``path``."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._switches: dict[str, Switch] = self._load()

    def _load(self) -> dict[str, Switch]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {name: Switch(**value) for name, value in data.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning(
                "tracing switches unreadable: none in force", path=str(self.path), error=str(exc)
            )
            return {}

    def _save(self) -> None:
        data = {name: asdict(switch) for name, switch in self._switches.items()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        os.replace(partial, self.path)

    def set(
        self,
        function: str,
        rate: float,
        own: TracingSpec,
        *,
        invocations: int | None = None,
        seconds: float | None = None,
    ) -> Switch:
        """Raise a function's tracing to ``rate`` for ``invocations`` or ``seconds`` (one of them)."""
        if (invocations is None) == (seconds is None):
            raise ValueError("a tracing switch lasts a number of invocations or a time")
        now = self._clock()
        until = now + (seconds if seconds is not None else COUNTED_AT_MOST_S)
        switch = Switch(rate, until, invocations, _own(own), now)
        with self._lock:
            self._switches[function] = switch
            self._save()
        log.info(
            "tracing switched on",
            function=function,
            rate=rate,
            invocations=invocations,
            seconds=seconds,
        )
        return switch

    def clear(self, function: str) -> None:
        """End a function's switch now (no-op without one)."""
        with self._lock:
            if self._switches.pop(function, None) is not None:
                self._save()

    def _current(self, function: str, own: TracingSpec) -> Switch | None:
        """The function's switch while it is in force; an ended one is dropped (lock held)."""
        switch = self._switches.get(function)
        if switch is None:
            return None
        why = ""
        if switch.own != _own(own):
            why = "the function's own tracing setting was changed: it stands"
        elif self._clock() >= switch.until:
            why = "its time ran out"
        elif switch.invocations is not None and switch.invocations <= 0:
            why = "its invocations ran out"
        if not why:
            return switch
        del self._switches[function]
        self._save()
        log.info("tracing switch ended", function=function, why=why)
        return None

    def rate(self, function: str, own: TracingSpec) -> float:
        """The share of invocations a switch traces now; 0 without one."""
        with self._lock:
            switch = self._current(function, own)
        return switch.rate if switch is not None else 0.0

    def take(self, function: str, own: TracingSpec) -> TracingSpec:
        """The tracing setting for one invocation starting now; it counts towards a switch."""
        with self._lock:
            switch = self._current(function, own)
            if switch is None:
                return own
            if switch.invocations is not None:
                left = switch.invocations - 1
                self._switches[function] = Switch(
                    switch.rate, switch.until, left, switch.own, switch.set_at
                )
                if left <= 0:
                    self._current(function, own)  # the last one: ended now, saved once
                else:
                    self._save()
        return raised(own, switch.rate)
