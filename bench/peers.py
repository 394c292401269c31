"""The strategies people use instead of tuner, as models run on the simulated fleet.

- ``vpa``: Kubernetes VPA's rule: after an OOM, memory becomes max(+100 MiB, x1.2) of the
  limit it died at; otherwise memory follows the p90 of usage over 8 days + 15% when it
  is more than 10% off (held for a day after an OOM bump, as VPA keeps the OOM sample).
- ``compute_optimizer``: once a day, memory becomes the highest peak of the last 14 days
  + 10% headroom, rounded up to 64 MB; after OOMs that day (the peak is not known), at
  least x1.5.  Applied when more than 10% off.
- ``power_tuning``: a synthetic sweep at 128, 256, 512, 1024, 1536 and 3008 MB with 10
  invocations each, keeping the cheapest size at which all of them succeed in time;
  swept again on a day with OOMs.  Its invocations and their cost are counted.

Each strategy observes the same fleet through the sim provider's windows and changes
memory through it, so the ledger scores them exactly as it scores tuner.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable

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

    def step(self, provider: SimProvider, now: float) -> None:
        """React to one window."""
        for i, (target, outcome) in enumerate(
            zip(provider.targets(), provider.last_outcomes, strict=True)
        ):
            if outcome is None or not outcome.invocations:
                continue
            memory = target.config.memory_mb
            if outcome.ooms:
                provider.set_memory(target.ref, _clamp(max(memory + 100, memory * 1.2)))
                self.hold_until[i] = now + DAY_S
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

    def step(self, provider: SimProvider, now: float) -> None:
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
        for i, w in enumerate(provider.workloads):
            self._sweep(provider, i, w)

    def _sweep(self, provider: SimProvider, i: int, w: Workload) -> None:
        best: tuple[float, int] | None = None
        timeout_ms = w.timeout_s * 1000.0
        for size in POWER_VALUES:
            ok = True
            for run in range(POWER_RUNS):
                if w.kind == "leak":  # a fresh worker: the leak has not built up
                    need = w.start_mb + w.leak_mb * run
                else:
                    need = w.start_mb + w.mb_per_kb * w.payload_max_kb * self.rng.random() ** w.skew
                duration = w.duration_ms(size) * (0.8 + self.rng.random() ** 4)
                ok = ok and need <= size and duration < timeout_ms
            provider.ledger.synthetic(POWER_RUNS, POWER_RUNS * w.cost_per_invocation(size))
            cost = w.cost_per_invocation(size)
            if ok and (best is None or cost < best[0]):
                best = (cost, size)
        if best is not None:
            provider.set_memory(FunctionRef(provider.name, w.name), best[1])

    def daily(self, provider: SimProvider) -> None:
        """Sweep again the functions that ran out of memory."""
        for i, w in enumerate(provider.workloads):
            if self.oomed[i]:
                self._sweep(provider, i, w)
                self.oomed[i] = False


PEERS: dict[str, Callable[[SimProvider, float], Vpa | ComputeOptimizer | PowerTuning]] = {
    "vpa": Vpa,
    "compute_optimizer": ComputeOptimizer,
    "power_tuning": PowerTuning,
}


def run_peer(name: str, functions: int, days: float, seed: int, window_s: float) -> SimProvider:
    """Run one peer strategy on a fresh fleet; its provider's ledger holds the score."""
    clock = VirtualClock()
    provider = build(Settings(functions=functions, seed=seed, probe=False), clock=clock)
    end = days * DAY_S
    provider.ledger.settle_from = max(window_s, end - DAY_S)
    strategy = PEERS[name](provider, window_s)
    while clock.now() + window_s <= end + 1e-6:
        clock.advance(window_s)
        now = clock.now()
        provider.observe(provider.targets(), now - window_s, now)
        strategy.step(provider, now)
    return provider
