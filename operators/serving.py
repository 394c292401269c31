"""The operator's HTTP endpoints: ``/healthz``, ``/readyz`` and ``/metrics`` on one port.

The daemon's :class:`tuner.web.server.WebServer` serves them (without the dashboard);
this module says what the two probes mean for an operator replica and adds, to the
metrics every policy's tuner shares, the gauges of the operator itself:

- **alive** while the Kopf event loop runs (a heartbeat on that loop is younger than
  :data:`STALE_S`) and the leader election task has not stopped;
- **ready** once Kopf has started, and then: a standby always (it holds no Lease and has
  nothing to do but be ready to take over); the leader when every wired policy's tuner
  finished a cycle within three of its intervals (or no policy is wired).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from tuner.domain.errors import ConfigError, Problem
from tuner.web.server import WebServer

if TYPE_CHECKING:
    from operators.state import OperatorState

STALE_S = 30.0
"""The event loop counts as stuck when its heartbeat is older than this."""
BEAT_S = 1.0


def policy_name(key: tuple[str, str]) -> str:
    """``namespace/name`` of a policy key."""
    return f"{key[0]}/{key[1]}"


class OperatorProbes:
    """What ``/healthz`` and ``/readyz`` answer for one operator replica."""

    def __init__(self, state: OperatorState, clock: Callable[[], float] = time.monotonic) -> None:
        """Probes of ``state``; the process start counts as the first heartbeat."""
        self.state = state
        self.clock = clock
        self.last_beat = clock()
        self.started = False
        self.election: asyncio.Task[None] | None = None
        state.metrics.watch_all(
            lambda: [r.insight.watched for _, r in state.wired() if r.insight is not None]
        )
        state.metrics.registry.register(_OperatorCollector(state))

    def start(self, election: asyncio.Task[None]) -> None:
        """Kopf has started and runs ``election``, the task that keeps the Lease."""
        self.election = election
        self.started = True

    async def keep_beating(self) -> None:
        """Beat on the event loop until cancelled: proof that the loop runs."""
        while True:
            self.last_beat = self.clock()
            await asyncio.sleep(BEAT_S)

    def alive(self) -> tuple[bool, str]:
        """Alive while the event loop beats and the leader election runs."""
        age = self.clock() - self.last_beat
        if age > STALE_S:
            return False, f"the operator's event loop has not run for {age:.0f} s"
        if self.election is not None and self.election.done():
            return False, "the leader election has stopped"
        role = "leader" if self.state.elector.is_leader else "standby"
        return True, f"ok, {role}"

    def ready(self) -> tuple[bool, str]:
        """Ready when started and a standby, or the leader with every policy cycling."""
        if not self.started:
            return False, "starting: Kopf has not started yet"
        identity = self.state.settings.identity
        if not self.state.elector.is_leader:
            return True, f"standby: {identity} does not hold the Lease and is ready to take over"
        runners = self.state.wired()
        late = []
        for key, runner in runners:
            if runner.insight is None:
                continue
            ok, why = runner.insight.state.ready(runner.tuner.daemon.clock.now())
            if not ok:
                late.append(f"{policy_name(key)}: {why}")
        if late:
            return False, f"leader {identity}, policies not cycling: " + "; ".join(late)
        return True, f"leader {identity}, {len(runners)} policies cycling"


class _OperatorCollector(Collector):
    """The operator's own gauges: leadership, policies, and each policy's cycles."""

    def __init__(self, state: OperatorState) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        state = self.state
        leader = GaugeMetricFamily(
            "tuner_operator_leader", "1 while this replica holds the Lease and acts, else 0."
        )
        leader.add_metric([], 1 if state.elector.is_leader else 0)
        yield leader
        runners = state.wired()
        policies = GaugeMetricFamily(
            "tuner_operator_policies",
            "TuningPolicies known, by state (wired, invalid).",
            labels=["state"],
        )
        policies.add_metric(["wired"], len(runners))
        policies.add_metric(["invalid"], len(state.problems))
        yield policies
        cycles = CounterMetricFamily(
            "tuner_policy_cycles",
            "Cycles run per policy since it was last wired.",
            labels=["policy"],
        )
        last = GaugeMetricFamily(
            "tuner_policy_last_cycle_timestamp_seconds",
            "When a policy's last cycle finished.",
            labels=["policy"],
        )
        for key, runner in runners:
            if runner.insight is None:
                continue
            live = runner.insight.state
            cycles.add_metric([policy_name(key)], live.cycles)
            if live.last_finished is not None:
                last.add_metric([policy_name(key)], live.last_finished)
        yield cycles
        yield last


def serve(probes: OperatorProbes, address: tuple[str, int]) -> WebServer:
    """Serve the probes and the metrics at ``address`` on a background thread.

    A taken address is a :class:`ConfigError` naming ``TUNER_HTTP_ADDRESS``.
    """
    host, port = address
    try:
        server = WebServer(
            None, probes.state.metrics, host, port, alive=probes.alive, ready=probes.ready
        )
    except OSError as exc:
        why = f"cannot listen on {host}:{port}: {exc.strerror}"
        raise ConfigError([Problem("TUNER_HTTP_ADDRESS", None, why)]) from None
    server.start()
    return server
