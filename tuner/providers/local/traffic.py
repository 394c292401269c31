"""The traffic driver: sends each function the demo load its ``function.yaml`` declares.

Invocations and queue records arrive as Poisson processes: each function has its own
random stream, so unrelated functions never start in step (as real clients do not).
Functions with a ``schedule`` also fire at its cron times, and functions with the same
schedule fire together, as cron jobs do (in a new random order each time).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from tuner.providers.local.host import FunctionHost
from tuner.providers.local.schedules import cron_trigger, next_fire
from tuner.providers.local.specs import TrafficSpec

log = structlog.get_logger(__name__)


class TrafficDriver:
    """Invokes functions and fills their queues at the declared rates until stopped.

    Bounded: at most ``max_in_flight`` direct invocations per function run at once; an
    arrival that finds a function saturated is skipped and counted in ``dropped``.
    ``seed`` makes the arrival times repeatable.
    """

    def __init__(
        self,
        host: FunctionHost,
        traffic: Mapping[str, TrafficSpec],
        *,
        max_in_flight: int = 8,
        seed: int | None = None,
    ) -> None:
        self._host = host
        self._traffic = {name: spec for name, spec in traffic.items() if _active(spec)}
        self._max_in_flight = max_in_flight
        self._in_flight: dict[str, int] = dict.fromkeys(self._traffic, 0)
        self.dropped: dict[str, int] = dict.fromkeys(self._traffic, 0)
        self.sent: dict[str, int] = dict.fromkeys(self._traffic, 0)
        self._events: dict[str, Iterator[Any]] = {
            name: itertools.cycle(spec.events) for name, spec in self._traffic.items()
        }
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, max_in_flight * len(self._traffic)), thread_name_prefix="traffic"
        )
        seeds = random.Random(seed)
        self._threads = [
            threading.Thread(
                target=self._drive,
                args=(name, spec, random.Random(seeds.getrandbits(64))),
                name=f"traffic-{name}",
                daemon=True,
            )
            for name, spec in self._traffic.items()
            if spec.rate_per_s > 0 or spec.records_per_s > 0 or spec.backlog > 0
        ]
        scheduled = {n: s.schedule for n, s in self._traffic.items() if s.schedule is not None}
        if scheduled:
            self._threads.append(
                threading.Thread(
                    target=self._fire,
                    args=(scheduled, random.Random(seeds.getrandbits(64))),
                    name="traffic-schedule",
                    daemon=True,
                )
            )

    def start(self) -> None:
        """Start sending."""
        for thread in self._threads:
            thread.start()
        log.info("traffic started", functions=sorted(self._traffic))

    def stop(self) -> None:
        """Stop sending and wait for the invocations in flight."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()
        self._executor.shutdown(wait=True, cancel_futures=True)
        log.info("traffic stopped", sent=self.sent, dropped=self.dropped)

    def _drive(self, name: str, spec: TrafficSpec, rng: random.Random) -> None:
        """Poisson arrivals of invocations and records for one function."""
        serial = itertools.count(1)
        if spec.backlog:
            self._enqueue(name, [next(serial) for _ in range(spec.backlog)])
        now = time.monotonic()
        next_invocation = now + _first(rng, spec.rate_per_s)
        next_record = now + _first(rng, spec.records_per_s)
        while True:
            moment = min(next_invocation, next_record)
            if moment == float("inf"):
                self._stop.wait()
                return
            if self._stop.wait(max(0.0, moment - time.monotonic())):
                return
            if next_invocation <= next_record:
                self._submit(name)
                next_invocation += rng.expovariate(spec.rate_per_s)
            else:
                self._enqueue(name, [next(serial)])
                next_record += rng.expovariate(spec.records_per_s)

    def _enqueue(self, name: str, serials: list[int]) -> None:
        self._host.enqueue(name, [{"id": n} for n in serials])
        with self._lock:
            self.sent[name] += len(serials)

    def _fire(self, schedules: Mapping[str, Mapping[str, str | int]], rng: random.Random) -> None:
        """Invoke each scheduled function at its cron times: together when they match, in
        no particular order (each time another, as independent schedulers would)."""
        triggers = {name: cron_trigger(fields) for name, fields in schedules.items()}
        due = {name: next_fire(trigger, time.time()) for name, trigger in triggers.items()}
        while True:
            pending = [t for t in due.values() if t is not None]
            if not pending:
                return
            moment = min(pending)
            if self._stop.wait(max(0.0, moment - time.time())):
                return
            now = [n for n, t in due.items() if t == moment]
            rng.shuffle(now)
            for name in now:
                self._submit(name)
                due[name] = next_fire(triggers[name], moment)

    def _submit(self, name: str) -> None:
        with self._lock:
            if self._in_flight[name] >= self._max_in_flight:
                self.dropped[name] += 1
                return
            self._in_flight[name] += 1
            self.sent[name] += 1
            event = next(self._events[name])
        self._executor.submit(self._invoke, name, event)

    def _invoke(self, name: str, event: object) -> None:
        try:
            self._host.invoke(name, event)
        except Exception:
            log.exception("traffic invocation failed", function=name)
        finally:
            with self._lock:
                self._in_flight[name] -= 1


def _first(rng: random.Random, rate: float) -> float:
    """The wait for the first arrival: within one mean gap, so that every function shows
    itself soon after the traffic starts (forever at rate 0)."""
    return rng.uniform(0.0, 1.0 / rate) if rate > 0 else float("inf")


def _active(spec: TrafficSpec) -> bool:
    return (
        spec.rate_per_s > 0
        or spec.records_per_s > 0
        or spec.backlog > 0
        or spec.schedule is not None
    )
