"""SimProvider: a simulated fleet of Lambda-like functions behind tuner's Provider port.

Deterministic from its seed: the traffic of a window depends only on the seed and the
window's bounds, never on what a strategy did, so strategies run on separate providers
with the same seed see the same invocations.
"""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import replace

from tuner.domain.errors import ConflictError, ProviderError
from tuner.domain.model import (
    Change,
    FunctionConfig,
    FunctionRef,
    Knob,
    Limits,
    Target,
    WindowFacts,
)
from tuner.domain.ports import Clock
from tuner.domain.times import DAY_S
from tuner.providers.sim.scoring import Ledger
from tuner.providers.sim.windows import DRAWS, DependencyState, Evidence, Outcome, simulate
from tuner.providers.sim.workloads import (
    DEPENDENCIES,
    MAX_MEMORY_MB,
    MIN_MEMORY_MB,
    Workload,
)

SIM_LIMITS = Limits(memory_min_mb=MIN_MEMORY_MB, memory_max_mb=MAX_MEMORY_MB, memory_step_mb=1)
"""Lambda's limits: 128 MB to 10,240 MB in 1 MB steps, up to 900 s, CPU with memory."""


class VirtualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 0.0):
        self.t = start

    def now(self) -> float:
        """The virtual time in seconds."""
        return self.t

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.t += seconds


class SimProvider:
    """Lists, observes and reconfigures a simulated fleet; scores what happened in a ledger.

    The ledger counts each window of real traffic once, however often it is observed.
    """

    def __init__(
        self,
        workloads: Sequence[Workload],
        clock: Clock,
        *,
        name: str = "sim",
        seed: int = 0,
        evidence: Evidence | None = None,
        lookback_days: int = 14,
        history_days: float = 14.0,
    ):
        self.name = name
        self.clock = clock
        self.seed = seed
        self.workloads = list(workloads)
        self.evidence = evidence or Evidence()
        self.ledger = Ledger(self.workloads)
        self.lookback_days = lookback_days
        self._index = {FunctionRef(name, w.name): i for i, w in enumerate(self.workloads)}
        self._configs = [
            FunctionConfig(memory_mb=w.memory_mb, timeout_s=w.timeout_s, revision="1")
            for w in self.workloads
        ]
        self._targets = [self._target(i) for i in range(len(self.workloads))]
        size = len(self.workloads) * lookback_days
        self._peaks = array("d", bytes(8 * size))
        self._payloads = array("d", bytes(8 * size))
        self._fastest = array("d", [math.inf]) * size
        """The lowest mean duration of a window, per function and day (inf: none)."""
        self._day = 0
        self._modelled = bytearray(len(self.workloads))
        """1 where the lookback holds enough survivors to model memory (payload or leak)."""
        self._outages = _outages(seed)
        self._seen: tuple[float, float] | None = None
        self._last: dict[FunctionRef, WindowFacts] = {}
        self.last_outcomes: list[Outcome | None] = [None] * len(self.workloads)
        """The true outcome of each function's latest window (for strategies that read usage)."""
        self._history_days = math.ceil(history_days)
        """Days of history before the start, in the lookback until they age out of it."""
        if history_days > 0:
            self._remember(history_days * DAY_S)

    def _remember(self, seconds: float) -> None:
        """Fill the lookback with the history of the fleet at its starting configuration.

        The fleet has been running before the simulation starts: its payloads and peaks
        are in the provider's history, as CloudWatch or a metrics store would hold them.
        Nothing of it counts in the ledger.
        """
        rng = random.Random(f"tuner-sim-history:{self.seed}")
        slot = self.lookback_days - 1  # yesterday's slot: it ages out of the lookback in time
        for i, w in enumerate(self.workloads):
            config = self._configs[i]
            draws = [rng.random() for _ in range(DRAWS)]
            facts, _ = simulate(
                w,
                self._targets[i].ref,
                config.memory_mb,
                config.timeout_s or 900.0,
                -seconds,
                0.0,
                draws,
                DependencyState(),
                self.evidence,
            )
            base = i * self.lookback_days
            self._peaks[base + slot] = facts.peak_memory_mb or 0.0
            self._payloads[base + slot] = facts.extra.get("payload_kb_max", 0.0)
            self._fastest[base + slot] = facts.extra.get("duration_avg_ms", math.inf)
            if _MODEL_FACTS & facts.extra.keys():
                self._modelled[i] = 1

    def _target(self, i: int) -> Target:
        w = self.workloads[i]
        return Target(
            ref=FunctionRef(self.name, w.name),
            config=self._configs[i],
            labels={"team": f"team-{i % 12}"},
            limits=SIM_LIMITS,
        )

    # ------------------------------------------------------------ the Provider port

    def targets(self) -> list[Target]:
        """Every simulated function with its current configuration."""
        return list(self._targets)

    def observe(
        self, targets: Sequence[Target], start: float, end: float
    ) -> Mapping[FunctionRef, WindowFacts]:
        """Facts over ``[start, end)``: simulated once per window, then answered from memory."""
        if self._seen == (start, end):
            return {t.ref: self._last[t.ref] for t in targets if t.ref in self._last}
        self._roll_lookback(end)
        rng = random.Random(f"tuner-sim:{self.seed}:{start:.3f}:{end:.3f}")
        draws = [rng.random() for _ in range(DRAWS * len(self.workloads))]
        states = {d: self._dependency(d, start) for d in DEPENDENCIES}
        out: dict[FunctionRef, WindowFacts] = {}
        for i, w in enumerate(self.workloads):
            config = self._configs[i]
            facts, outcome = simulate(
                w,
                self._targets[i].ref,
                config.memory_mb,
                config.timeout_s or 900.0,
                start,
                end,
                draws[i * DRAWS : (i + 1) * DRAWS],
                states[w.dependency],
                self.evidence,
            )
            self.ledger.window(i, config.memory_mb, outcome, end)
            self.last_outcomes[i] = outcome
            out[facts.ref] = self._with_lookback(i, facts)
        self._seen, self._last = (start, end), out
        return {t.ref: out[t.ref] for t in targets if t.ref in out}

    def last_window(self) -> Mapping[FunctionRef, WindowFacts]:
        """The facts of the latest window observed, per function."""
        return self._last

    def read(self, ref: FunctionRef) -> FunctionConfig:
        """The live configuration of one function."""
        return self._configs[self._position(ref)]

    def apply(
        self, target: Target, changes: Sequence[Change], *, reason: str = ""
    ) -> FunctionConfig:
        """Apply memory or timeout changes at once; a stale revision is a conflict."""
        i = self._position(target.ref)
        config = self._configs[i]
        if target.config.revision and target.config.revision != config.revision:
            raise ConflictError(f"{target.ref.key} changed since it was read")
        values: dict[Knob, float | int] = {}
        for change in changes:
            if change.knob not in (Knob.MEMORY_MB, Knob.TIMEOUT_S):
                raise ProviderError(f"the simulator has no {change.knob.value} setting")
            values[change.knob] = change.after
        new = config.with_changes(values)
        if new == config:
            return config
        new = replace(new, memory_mb=int(new.memory_mb), revision=str(int(config.revision) + 1))
        self.ledger.change(i, config.memory_mb, new.memory_mb)
        self._configs[i] = new
        self._targets[i] = self._target(i)
        return new

    def set_memory(self, ref: FunctionRef, memory_mb: int) -> None:
        """Set memory directly (for strategies that do not go through tuner's loop)."""
        i = self._position(ref)
        change = Change(Knob.MEMORY_MB, self._configs[i].memory_mb, memory_mb)
        self.apply(self._targets[i], [change])

    # ------------------------------------------------------------ internals

    def _position(self, ref: FunctionRef) -> int:
        try:
            return self._index[ref]
        except KeyError:
            raise ProviderError(f"no such simulated function: {ref.key}") from None

    def _dependency(self, name: str, start: float) -> DependencyState:
        down, slow = self._outages[name]
        if down <= start < down + 3600:
            return DependencyState(error_rate=0.9, latency_ms=3000.0)
        if slow <= start < slow + 2 * 3600:
            return DependencyState(error_rate=0.0, latency_ms=450.0)
        return DependencyState()

    def _roll_lookback(self, end: float) -> None:
        day = int(end // DAY_S)
        while self._day < day:
            self._day += 1
            slot = self._day % self.lookback_days
            for i in range(len(self.workloads)):
                self._peaks[i * self.lookback_days + slot] = 0.0
                self._payloads[i * self.lookback_days + slot] = 0.0
                self._fastest[i * self.lookback_days + slot] = math.inf

    def _with_lookback(self, i: int, facts: WindowFacts) -> WindowFacts:
        """Add the largest peak and payload of the lookback (the provider's own history)."""
        base = i * self.lookback_days
        slot = base + self._day % self.lookback_days
        if facts.peak_memory_mb is not None:
            self._peaks[slot] = max(self._peaks[slot], facts.peak_memory_mb)
        payload = facts.extra.get("payload_kb_max")
        if payload is not None:
            self._payloads[slot] = max(self._payloads[slot], payload)
        mean_ms = facts.extra.get("duration_avg_ms")
        if mean_ms is not None:
            self._fastest[slot] = min(self._fastest[slot], mean_ms)
        peak = max(self._peaks[base : base + self.lookback_days])
        if not facts.invocations:
            return facts
        # The lookback's payloads are history too when no invocation survived (no peak).
        extra = dict(facts.extra)
        if _MODEL_FACTS & extra.keys():
            self._modelled[i] = 1
        elif self._modelled[i]:
            extra.update(_model_facts(self.workloads[i]))
        if peak > 0:
            extra["lookback_peak_memory_mb"] = peak
        days = self._day + 1 + self._history_days
        extra["lookback_days"] = float(min(self.lookback_days, days))
        fastest = min(self._fastest[base : base + self.lookback_days])
        if fastest < math.inf:
            extra["lookback_duration_avg_ms_min"] = fastest
        if payload is not None:
            extra["lookback_payload_kb_max"] = max(self._payloads[base : base + self.lookback_days])
        return replace(facts, extra=extra)


_MODEL_FACTS = {"memory_mb_per_payload_kb", "memory_growth_mb_per_invocation"}


def _model_facts(w: Workload) -> dict[str, float]:
    """How memory grows, as a regression over the lookback's surviving invocations finds it."""
    if w.kind == "leak":
        return {
            "worker_start_memory_mb": w.start_mb,
            "memory_growth_mb_per_invocation": w.leak_mb,
            "worker_lifetime_invocations": float(w.worker_life),
        }
    return {"memory_mb_per_payload_kb": w.mb_per_kb, "memory_base_mb": w.start_mb}


def _outages(seed: int) -> dict[str, tuple[float, float]]:
    """For each dependency, when it goes down for an hour and when it is slow for two."""
    rng = random.Random(f"tuner-sim-outages:{seed}")
    return {
        name: (
            math.floor(rng.uniform(0.5, 6.5) * 24) * 3600.0,
            math.floor(rng.uniform(0.5, 6.5) * 24) * 3600.0,
        )
        for name in DEPENDENCIES
    }
