"""The fleet's real traffic as virtual time passes: each function's simulated once, part by part.

Each function has a cursor: its traffic up to there has been simulated at the
configuration in force and counted in the ledger.  Observing, changing a function or a
deploy moves the cursor first, so an invocation is counted once, at the size it ran at,
whatever windows are asked for.  While a size is tried on a share of the traffic (a
trial), that share runs at the size tried.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from tuner.domain.model import FunctionConfig, FunctionRef, WindowFacts
from tuner.providers.sim.scoring import Ledger
from tuner.providers.sim.sizes import MeasuredSizes
from tuner.providers.sim.slots import DRAWS, PART_DRAWS, Part, first_oom
from tuner.providers.sim.windows import DependencyState, Evidence, Outcome, simulate
from tuner.providers.sim.workloads import DEPENDENCIES, SLOT_S, Workload

WIDTH = DRAWS + PART_DRAWS


@dataclass(frozen=True, slots=True)
class Ran:
    """A part of a slot as it ran at the function's own size: what is reported, and its truth."""

    part: Part
    facts: WindowFacts
    outcome: Outcome


@dataclass
class Trial:
    """A size tried on a share of a function's traffic until enough invocations ran there."""

    memory_mb: int
    left: int
    """Invocations still to run at the size tried."""


class Traffic:
    """Simulates and counts each function's traffic up to a time, at its configuration."""

    def __init__(
        self,
        workloads: Sequence[Workload],
        seed: int,
        evidence: Evidence,
        ledger: Ledger,
        start: float,
        trial_share: float,
    ):
        self.workloads = workloads
        self.seed = seed
        self.evidence = evidence
        self.ledger = ledger
        self.sizes = MeasuredSizes(len(workloads))
        self.trial_share = trial_share
        self.trials: dict[int, Trial] = {}
        self.cursor = [start] * len(workloads)
        """How far each function's traffic has been simulated (and counted)."""
        self.ran: list[list[Ran]] = [[] for _ in workloads]
        """Each function's recent parts at its own size, oldest first."""
        self.keep_s = SLOT_S
        """How long parts are kept: the longest window asked for."""
        self._outages = _outages(seed)
        self._draws: dict[float, list[float]] = {}

    def advance(self, i: int, until: float, config: FunctionConfig, ref: FunctionRef) -> bool:
        """Simulate function ``i``'s traffic up to ``until``; True when a trial ended meanwhile."""
        t = self.cursor[i]
        if until <= t:
            return False
        w = self.workloads[i]
        ran = self.ran[i]
        ended = False
        for part in parts(t, until):
            u = self.draws(part.slot_start, part.slot_end)[i * WIDTH : (i + 1) * WIDTH]
            version = w.version_at(part.start)
            dependency = self.dependency(w.dependency, part.start)
            timeout = config.timeout_s or 900.0
            trial = self.trials.get(i)
            own = version if trial is None else _share(version, 1.0 - self.trial_share)
            facts, outcome = simulate(
                own, ref, config.memory_mb, timeout, part, u, dependency, self.evidence
            )
            self.ledger.window(i, config.memory_mb, outcome, part.end, version)
            self._measure(i, config.memory_mb, timeout, facts, outcome)
            ran.append(Ran(part, facts, outcome))
            if trial is not None:
                tried = _share(version, self.trial_share)
                t_facts, t_outcome = simulate(
                    tried, ref, trial.memory_mb, timeout, part, u, dependency, self.evidence
                )
                self.ledger.trial(i, t_outcome, part.end, version)
                self._measure(i, trial.memory_mb, timeout, t_facts, t_outcome)
                trial.left -= t_outcome.invocations
                if trial.left <= 0:
                    del self.trials[i]
                    ended = True
        self.cursor[i] = until
        old = until - self.keep_s - SLOT_S
        if ran and ran[0].part.end <= old:
            self.ran[i] = [r for r in ran if r.part.end > old]
        return ended

    def _measure(
        self, i: int, memory_mb: int, timeout_s: float, facts: WindowFacts, outcome: Outcome
    ) -> None:
        mean = facts.extra.get("duration_avg_ms")
        if mean is not None:
            n, ooms, timeouts = outcome.invocations, outcome.ooms, outcome.timeouts
            self.sizes.add(i, memory_mb, n, mean, ooms, timeouts, timeout_s * 1000.0)

    def within(self, i: int, start: float, end: float) -> list[Ran]:
        """Function ``i``'s parts inside ``[start, end)``."""
        return [r for r in self.ran[i] if r.part.start >= start and r.part.end <= end]

    def draws(self, slot_start: float, slot_end: float) -> list[float]:
        """The uniform numbers of a slot for the whole fleet (the last few slots' are kept)."""
        cached = self._draws.get(slot_start)
        if cached is not None:
            return cached
        rng = random.Random(f"tuner-sim:{self.seed}:{slot_start:.3f}:{slot_end:.3f}")
        count = len(self.workloads)
        first = [rng.random() for _ in range(DRAWS * count)]  # as before parts were drawn
        more = [rng.random() for _ in range(PART_DRAWS * count)]
        draws: list[float] = []
        for i in range(count):
            draws += first[i * DRAWS : (i + 1) * DRAWS]
            draws += more[i * PART_DRAWS : (i + 1) * PART_DRAWS]
        if len(self._draws) >= 4:
            del self._draws[min(self._draws)]
        self._draws[slot_start] = draws
        return draws

    def dependency(self, name: str, start: float) -> DependencyState:
        """How a dependency behaves from ``start``: down for an hour, slow for two, else fine."""
        down, slow = self._outages[name]
        if down <= start < down + 3600:
            return DependencyState(error_rate=0.9, latency_ms=3000.0)
        if slow <= start < slow + 2 * 3600:
            return DependencyState(error_rate=0.0, latency_ms=450.0)
        return DependencyState()

    def first_news(
        self, memory: Sequence[int], refs: Sequence[FunctionRef], since: float, until: float
    ) -> dict[FunctionRef, float]:
        """Functions whose invocations run out of memory in ``[since, until)`` at ``memory``."""
        news: dict[FunctionRef, float] = {}
        for part in parts(since, until):
            u = self.draws(part.slot_start, part.slot_end)
            for i, w in enumerate(self.workloads):
                version = w.version_at(part.start)
                if memory[i] >= version.need_mb or refs[i] in news:
                    continue  # nothing can run out of memory, or known already
                at = first_oom(version, memory[i], part, u[i * WIDTH : (i + 1) * WIDTH])
                if at is not None:
                    news[refs[i]] = at
        return news


def _share(w: Workload, share: float) -> Workload:
    """The function with ``share`` of its traffic."""
    return replace(w, rate_per_s=w.rate_per_s * share)


def parts(start: float, end: float) -> list[Part]:
    """``[start, end)`` cut at the traffic slots' bounds."""
    out = []
    t = start
    while t < end - 1e-9:
        slot_start = math.floor(t / SLOT_S + 1e-9) * SLOT_S
        slot_end = slot_start + SLOT_S
        out.append(Part(slot_start, slot_end, t, min(end, slot_end)))
        t = min(end, slot_end)
    return out


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
