"""Random applications with a known call graph, and the invocations they make in time.

An application is a handful of functions and a few shared dependencies.  The functions
form a random DAG of nested, synchronous calls (a call is made on a share of the
caller's invocations, at a random point of its work, sometimes more than once); some
functions call nothing, and every function may call dependencies.  The functions nobody
calls get traffic of their own, and so do some that are also called.

The traffic is one of four kinds, the cases a timing miner meets:

- ``poisson``: independent Poisson arrivals whose rates share a daily cycle and bursts
  (so that independent functions have correlated traffic);
- ``schedule``: as ``poisson``, and besides, two or three functions fire together on a
  shared schedule (a few milliseconds apart, in either order), as cron jobs do;
- ``tick``: every arrival waits for the next tick of one shared 50 ms clock (what the
  local host's traffic driver once did), so unrelated invocations start together;
- ``fan-out``: as ``poisson``, but some calls to functions that call no other function
  are fan-outs: two to eight invocations of the callee at once (a split payload's
  parts), which the caller waits for together.  The applications are otherwise the same.

:func:`simulate` gives every invocation and dependency call as an interval, as the local
host records them: a nested invocation starts a little after its caller asked for it
(the host's dispatch) and its caller resumes a little after it ended.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace

from tuner.mining.timing import Interval

KINDS = ("poisson", "schedule", "tick", "fan-out")
TICK_S = 0.05


@dataclass(frozen=True, slots=True)
class Call:
    """A call a function makes on some of its invocations."""

    target: str
    chance: float
    """Share of the caller's invocations that make it."""
    repeat: int
    """Times it is made (one after the other) when it is made."""
    parallel: int = 1
    """Invocations of the target made at once each time (a fan-out), waited for together."""


@dataclass(frozen=True, slots=True)
class Function:
    """A function: its own work and the calls it makes, in order."""

    name: str
    work_ms: float
    """Median of its own work per invocation (log-normal)."""
    spread: float
    calls: tuple[Call, ...]


@dataclass(frozen=True, slots=True)
class App:
    """An application: functions, dependencies (median latency, ms), traffic, the truth."""

    functions: Mapping[str, Function]
    dependencies: Mapping[str, float]
    rates: Mapping[str, float]
    """Invocations per second of each function with traffic of its own."""
    scheduled: tuple[str, ...]
    """Functions that also fire together on a shared schedule."""
    period_s: float
    truth: frozenset[tuple[str, str]]

    def function_edges(self) -> frozenset[tuple[str, str]]:
        """The true calls between functions."""
        return frozenset(e for e in self.truth if e[1] in self.functions)


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def generate(rng: random.Random, kind: str = "poisson") -> App:
    """A random application whose traffic is of ``kind`` (see the module's docstring)."""
    names = [f"fn{i}" for i in range(rng.randint(5, 8))]
    dependencies = {f"db{i}": _log_uniform(rng, 0.5, 40.0) for i in range(rng.randint(1, 3))}
    functions: dict[str, Function] = {}
    truth: set[tuple[str, str]] = set()
    for index, name in enumerate(names):
        below = names[index + 1 :]
        callees = rng.sample(below, min(len(below), rng.choice((0, 0, 1, 1, 2, 3))))
        targets = callees + rng.sample(sorted(dependencies), rng.randint(0, len(dependencies)))
        rng.shuffle(targets)
        calls = tuple(
            Call(t, rng.choice((1.0, 1.0, 0.8, 0.5)), rng.choice((1, 1, 1, 2, 3))) for t in targets
        )
        truth.update((name, c.target) for c in calls)
        work = _log_uniform(rng, 0.3, 150.0)
        functions[name] = Function(name, work, rng.uniform(0.1, 0.6), calls)
    called = {t for _, t in truth}
    rates = {
        n: _log_uniform(rng, 0.2, 3.0)
        for n in names
        if n not in called or rng.random() < 0.3  # entry points, and some callees besides
    }
    scheduled: tuple[str, ...] = ()
    if kind == "schedule":
        scheduled = tuple(rng.sample(sorted(rates), min(len(rates), rng.randint(2, 3))))
    period = rng.uniform(1.0, 5.0)
    if kind == "fan-out":  # drawn last, so that the application is otherwise the same
        leaves = {
            n for n, f in functions.items() if not any(c.target in functions for c in f.calls)
        }
        for name, function in functions.items():
            calls = tuple(
                replace(c, parallel=rng.choice((1, 2, 4, 8))) if c.target in leaves else c
                for c in function.calls
            )
            functions[name] = replace(function, calls=calls)
    return App(functions, dependencies, rates, scheduled, period, frozenset(truth))


class _Run:
    """Simulates invocations into a list of intervals."""

    def __init__(self, app: App, rng: random.Random) -> None:
        self.app = app
        self.rng = rng
        self.out: list[Interval] = []

    def _work(self, function: Function) -> float:
        return function.work_ms / 1000 * math.exp(self.rng.gauss(0.0, function.spread))

    def invoke(self, name: str, start: float, depth: int = 0) -> float:
        """One invocation of ``name`` from ``start`` (seconds); returns its end."""
        function = self.app.functions[name]
        rng = self.rng
        made = [c for c in function.calls for _ in range(c.repeat) if rng.random() < c.chance]
        shares = [rng.random() + 0.1 for _ in range(len(made) + 1)]
        work = self._work(function)
        now = start + rng.uniform(0.00005, 0.0003)  # the handler begins
        for call, share in zip(made, shares, strict=False):
            now += work * share / sum(shares)
            if call.target in self.app.functions:
                ends = [
                    self.invoke(call.target, now + 0.0002 + rng.expovariate(1 / 0.0004), depth + 1)
                    for _ in range(call.parallel)  # each part after the host's dispatch
                ]
                now = max(ends) + rng.uniform(0.0001, 0.0005)
            else:
                latency = self.app.dependencies[call.target] / 1000
                latency *= math.exp(rng.gauss(0.0, 0.3))
                begin = now + rng.uniform(0.00002, 0.0001)
                self.out.append(Interval(call.target, begin, begin + latency, rng.random() < 0.01))
                now = begin + latency + rng.uniform(0.00002, 0.0001)
        end = now + work * shares[-1] / sum(shares) + rng.uniform(0.00005, 0.0002)
        self.out.append(Interval(name, start, end, rng.random() < 0.02))
        return end


def _rate_factor(t: float, seconds: float, bursts: list[tuple[float, float]]) -> float:
    """The shared daily cycle (one cycle over the run) and bursts (x5)."""
    daily = 1.0 + 0.8 * math.sin(2 * math.pi * t / seconds)
    return daily * (5.0 if any(b <= t < e for b, e in bursts) else 1.0)


def _poisson_times(
    rng: random.Random, rate: float, seconds: float, bursts: list[tuple[float, float]]
) -> list[float]:
    """Arrivals of an inhomogeneous Poisson process, by thinning."""
    peak = rate * 1.8 * 5.0
    times, t = [], 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= seconds:
            return times
        if rng.random() * peak < rate * _rate_factor(t, seconds, bursts):
            times.append(t)


def duration(seed: int, span: tuple[float, float]) -> float:
    """How long one application's traffic lasts, drawn from ``span`` (log-uniform)."""
    low, high = span
    return math.exp(random.Random(seed * 7 + 1).uniform(math.log(low), math.log(high)))


def simulate(app: App, kind: str, seconds: float, rng: random.Random) -> list[Interval]:
    """Every invocation and dependency call of ``seconds`` of the application's traffic."""
    bursts = []
    for _ in range(max(1, int(seconds / 60))):
        begin = rng.uniform(0, seconds)
        bursts.append((begin, begin + rng.uniform(2.0, 10.0)))
    starts: list[tuple[float, str]] = []
    for name, rate in sorted(app.rates.items()):
        shared = bursts if rng.random() < 0.7 else []  # most functions share the bursts
        starts += [(t, name) for t in _poisson_times(rng, rate, seconds, shared)]
    if kind == "schedule":
        fire = app.period_s
        while fire < seconds:
            starts += [(fire + rng.uniform(-0.002, 0.002), n) for n in app.scheduled]
            fire += app.period_s
    if kind == "tick":
        starts = [(math.ceil(t / TICK_S) * TICK_S + rng.uniform(0, 0.0005), n) for t, n in starts]
    run = _Run(app, rng)
    for start, name in sorted(starts):
        run.invoke(name, start)
    return run.out
