"""The strategies people use instead of tuner, as models run on the simulated fleet.

- ``vpa``: Kubernetes VPA's rule: after an OOM, memory becomes max(+100 MiB, x1.2) of the
  limit it died at; otherwise memory follows the p90 of usage over 8 days + 15% when it
  is more than 10% off (held for a day after an OOM bump, as VPA keeps the OOM sample).
  Its recommender runs every minute and watches OOM kills, so it reacts to an OOM when it
  happens, as early as tuner does (the same schedule: at most once a minute).
- ``compute_optimizer``: once a day, memory becomes the highest peak of the last 14 days
  + 10% headroom, rounded up to 64 MB; after OOMs that day (the peak is not known), at
  least x1.5.  Applied when more than 10% off.
- ``power_tuning``: a synthetic sweep at 128, 256, 512, 1024, 1536 and 3008 MB with 10
  invocations each (the first at each size a cold start: a new version), keeping the
  cheapest size at which all of them succeed in time; swept again after a day with OOMs,
  and after each deploy (as a deployment pipeline runs it).  Its invocations and their
  cost are counted.

Each strategy observes the same fleet through the sim provider's windows and changes
memory through it, so the ledger scores them exactly as it scores tuner.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable

from tuner.daemon.scheduling import EarlyCycles
from tuner.daemon.simulating import virtual_cycles
from tuner.domain.model import FunctionRef
from tuner.providers.sim import Settings, SimProvider, VirtualClock, build
from tuner.providers.sim.workloads import MAX_MEMORY_MB, MIN_MEMORY_MB, Workload

DAY_S = 86_400.0
POWER_VALUES = (128, 256, 512, 1024, 1536, 3008)
POWER_RUNS = 10


def _clamp(mb: float) -> int:
    return int(min(MAX_MEMORY_MB, max(MIN_MEMORY_MB, math.ceil(mb))))


class Vpa:
    """Kubernetes VPA's memory rule."""

    name = "vpa"

    def __init__(self, provider: SimProvider, window_s: float):
        self.p90s = [deque(maxlen=int(8 * DAY_S / window_s)) for _ in provider.workloads]
        self.hold_until = [0.0] * len(provider.workloads)

    def step(self, provider: SimProvider, now: float, only: frozenset[FunctionRef] | None) -> None:
        """React to one window (with ``only``: to the OOMs of those functions, early)."""
        for i, (target, outcome) in enumerate(
            zip(provider.targets(), provider.last_outcomes, strict=True)
        ):
            if outcome is None or not outcome.invocations:
                continue
            if only is not None and target.ref not in only:
                continue
            memory = target.config.memory_mb
            if outcome.ooms:
                provider.set_memory(target.ref, _clamp(max(memory + 100, memory * 1.2)))
                self.hold_until[i] = now + DAY_S
                continue
            if only is not None:
                continue
            if outcome.p90_mb is not None:
                self.p90s[i].append(outcome.p90_mb)
            if now < self.hold_until[i] or not self.p90s[i]:
                continue
            wanted = _clamp(max(self.p90s[i]) * 1.15)
            if abs(wanted - memory) > 0.1 * memory:
                provider.set_memory(target.ref, wanted)


class _Daily:
    """A strategy that notes which functions ran out of memory and acts once a day."""

    def __init__(self, provider: SimProvider, window_s: float):
        self.oomed = [False] * len(provider.workloads)
        self.next_day = DAY_S

    def step(self, provider: SimProvider, now: float, only: frozenset[FunctionRef] | None) -> None:
        """Note this window's OOMs; at the turn of a day, act."""
        for i, outcome in enumerate(provider.last_outcomes):
            if outcome is not None and outcome.ooms:
                self.oomed[i] = True
        if now >= self.next_day:
            self.next_day += DAY_S
            self.daily(provider)

    def daily(self, provider: SimProvider) -> None:
        """What the strategy does once a day."""
        raise NotImplementedError


class ComputeOptimizer(_Daily):
    """AWS Compute Optimizer's 14-day lookback, applied once a day."""

    name = "compute_optimizer"

    def daily(self, provider: SimProvider) -> None:
        """Apply the recommendations."""
        facts = provider.last_window()
        for i, target in enumerate(provider.targets()):
            window = facts.get(target.ref)
            peak = window.extra.get("lookback_peak_memory_mb") if window else None
            memory = target.config.memory_mb
            wanted = math.ceil((peak or 0.0) * 1.1 / 64) * 64
            if self.oomed[i]:
                wanted = max(wanted, math.ceil(memory * 1.5))
            self.oomed[i] = False
            if wanted and abs(wanted - memory) > 0.1 * memory:
                provider.set_memory(target.ref, _clamp(wanted))


class PowerTuning(_Daily):
    """AWS Lambda Power Tuning: a synthetic sweep of sizes per function."""

    name = "power_tuning"

    def __init__(self, provider: SimProvider, window_s: float):
        super().__init__(provider, window_s)
        self.rng = random.Random(f"power-tuning:{provider.seed}")
        self.swept_at = 0.0
        for w in provider.workloads:
            self._sweep(provider, w, 0.0)

    def _sweep(self, provider: SimProvider, function: Workload, now: float) -> None:
        w = function.version_at(now)
        best: tuple[float, int] | None = None
        timeout_ms = w.timeout_s * 1000.0
        for size in POWER_VALUES:
            ok = True
            for run in range(POWER_RUNS):
                if w.kind == "leak":  # a fresh worker: the leak has not built up
                    need = w.start_mb + w.leak_mb * run
                else:
                    payload = w.payload_max_kb * self.rng.random() ** w.skew
                    if self.rng.random() < w.tail_share:
                        payload = w.tail_kb * (0.9 + 0.1 * self.rng.random())
                    need = w.start_mb + w.mb_per_kb * payload
                duration = w.duration_ms(size) * (0.8 + self.rng.random() ** 4)
                duration += w.init_ms(size) if run == 0 else 0.0  # a new version starts cold
                ok = ok and need <= size and duration < timeout_ms
            cost = w.cost_per_invocation(size)
            provider.ledger.synthetic(POWER_RUNS, POWER_RUNS * cost, now)
            if ok and (best is None or cost < best[0]):
                best = (cost, size)
        if best is not None:
            provider.set_memory(FunctionRef(provider.name, w.name), best[1])

    def step(self, provider: SimProvider, now: float, only: frozenset[FunctionRef] | None) -> None:
        """Sweep the functions deployed since the last window; at the turn of a day, act."""
        for w in provider.workloads:
            if self.swept_at < w.deploy_at <= now:
                self._sweep(provider, w, now)
        self.swept_at = now
        super().step(provider, now, only)

    def daily(self, provider: SimProvider) -> None:
        """Sweep again the functions that ran out of memory."""
        for i, w in enumerate(provider.workloads):
            if self.oomed[i]:
                self._sweep(provider, w, self.next_day - DAY_S)
                self.oomed[i] = False


PEERS: dict[str, Callable[[SimProvider, float], Vpa | ComputeOptimizer | PowerTuning]] = {
    "vpa": Vpa,
    "compute_optimizer": ComputeOptimizer,
    "power_tuning": PowerTuning,
}


EARLY = {"vpa"}
"""Strategies that react to an OOM when it happens (VPA's recommender watches OOM kills)."""


def run_peer(
    name: str, functions: int, days: float, seed: int, window_s: float, early_gap_s: float
) -> SimProvider:
    """Run one peer strategy on a fresh fleet; its provider's ledger holds the score.

    A strategy in :data:`EARLY` also steps early for the functions that begin to fail, on
    the schedule tuner's simulation keeps (:class:`EarlyCycles`, at most every ``early_gap_s``).
    """
    clock = VirtualClock()
    provider = build(Settings(functions=functions, seed=seed, probe=False), clock=clock)
    end = days * DAY_S
    provider.ledger.settle_from = max(window_s, end - DAY_S)
    strategy = PEERS[name](provider, window_s)
    schedule = EarlyCycles(min_gap_s=early_gap_s) if name in EARLY and early_gap_s else None
    since = 0.0
    for plan in virtual_cycles(provider, clock, window_s, end, schedule):
        now = clock.now()
        targets = provider.targets()
        if plan is not None:
            targets = [t for t in targets if t.ref in plan.functions]
        provider.observe(targets, since, now)
        strategy.step(provider, now, plan.functions if plan else None)
        if plan is None:
            since = now
    return provider
