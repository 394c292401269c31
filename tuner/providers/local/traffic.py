"""The traffic driver: sends each function the demo load its ``function.yaml`` declares."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import structlog

from tuner.providers.local.host import FunctionHost
from tuner.providers.local.specs import TrafficSpec

log = structlog.get_logger(__name__)

_TICK_S = 0.05


class TrafficDriver:
    """Invokes functions and fills their queues at the declared rates until stopped.

    Bounded: at most ``max_in_flight`` direct invocations per function run at once; a tick
    that finds a function saturated skips its invocation and counts it in ``dropped``.
    """

    def __init__(
        self,
        host: FunctionHost,
        traffic: Mapping[str, TrafficSpec],
        *,
        max_in_flight: int = 8,
    ) -> None:
        self._host = host
        self._traffic = {name: spec for name, spec in traffic.items() if _active(spec)}
        self._max_in_flight = max_in_flight
        self._in_flight: dict[str, int] = dict.fromkeys(self._traffic, 0)
        self.dropped: dict[str, int] = dict.fromkeys(self._traffic, 0)
        self.sent: dict[str, int] = dict.fromkeys(self._traffic, 0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, max_in_flight * len(self._traffic)), thread_name_prefix="traffic"
        )
        self._threads = [
            threading.Thread(
                target=self._drive, args=(name, spec), name=f"traffic-{name}", daemon=True
            )
            for name, spec in self._traffic.items()
        ]

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

    def _drive(self, name: str, spec: TrafficSpec) -> None:
        events = itertools.cycle(spec.events)
        serial = itertools.count(1)
        invocation_credit = 1.0 if spec.rate_per_s else 0.0  # the first invocation at once
        record_credit = float(spec.backlog)
        next_tick = time.monotonic()
        while not self._stop.wait(max(0.0, next_tick - time.monotonic())):
            next_tick += _TICK_S
            invocation_credit += spec.rate_per_s * _TICK_S
            record_credit += spec.records_per_s * _TICK_S
            while invocation_credit >= 1:
                invocation_credit -= 1
                self._submit(name, next(events))
            if record_credit >= 1:
                count = int(record_credit)
                record_credit -= count
                self._host.enqueue(name, [{"id": next(serial)} for _ in range(count)])
                with self._lock:
                    self.sent[name] += count

    def _submit(self, name: str, event: object) -> None:
        with self._lock:
            if self._in_flight[name] >= self._max_in_flight:
                self.dropped[name] += 1
                return
            self._in_flight[name] += 1
            self.sent[name] += 1
        self._executor.submit(self._invoke, name, event)

    def _invoke(self, name: str, event: object) -> None:
        try:
            self._host.invoke(name, event)
        except Exception:
            log.exception("traffic invocation failed", function=name)
        finally:
            with self._lock:
                self._in_flight[name] -= 1


def _active(spec: TrafficSpec) -> bool:
    return spec.rate_per_s > 0 or spec.records_per_s > 0 or spec.backlog > 0
