"""Scoring a simulated run: OOM episodes, failed invocations, cost against the optimum, flapping.

The ledger knows each function's true memory need, so an OOM episode ends exactly when
memory reaches the need: every memory change in between is one redeploy spent on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from tuner.providers.sim.windows import Outcome
from tuner.providers.sim.workloads import Workload


@dataclass(frozen=True)
class Score:
    """The figures of one strategy on one fleet."""

    ooms: int
    """OOM episodes: a function running out of memory until its memory meets its need."""
    oom_fixed: int
    oom_one_step_fraction: float
    redeploys_per_oom_mean: float
    redeploys_per_oom_p95: float
    failed_invocations: int
    """Real invocations killed for memory or stopped at the timeout, over the whole run."""
    failed_before_fix: int
    """Of those, the OOMs inside episodes (before the fix went live)."""
    cost: float
    """What the fleet's real traffic (and its probes) cost over the settled period, in dollars."""
    optimum_cost: float
    cost_ratio_to_optimum: float
    synthetic_invocations: int
    """Invocations a strategy made up to measure a function (Power Tuning's sweep)."""
    synthetic_cost: float
    probe_invocations: int
    """Real invocations killed for memory and re-run once at a higher limit to measure them."""
    probe_cost: float
    changes: int
    flapping_changes: int
    """Memory changes that oscillate: each reverses a change that itself reversed one."""

    def as_json(self) -> dict[str, float | int]:
        """The figures as a JSON object."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class _Fn:
    need: float
    optimum_per_invocation: float
    in_episode: bool = False
    redeploys: int = 0
    failed: int = 0
    direction: int = 0
    reversed_last: bool = False
    episodes: list[tuple[int, bool]] = field(default_factory=list)
    cost: float = 0.0
    """What its real traffic (and probes) cost over the settled period."""
    optimum_cost: float = 0.0


class Ledger:
    """Counts what real traffic saw and paid, and every memory change, per function."""

    def __init__(self, workloads: Sequence[Workload], settle_from: float = math.inf):
        self.settle_from = settle_from
        """Cost is compared with the optimum over windows ending at or after this time."""
        self._fns = [_Fn(w.need_mb, w.cost_per_invocation(w.optimum_mb())) for w in workloads]
        self.failed = 0
        self.failed_before_fix = 0
        self.cost = 0.0
        self.optimum_cost = 0.0
        self.synthetic_invocations = 0
        self.synthetic_cost = 0.0
        self.probe_invocations = 0
        self.probe_cost = 0.0
        self.changes = 0
        self.flapping = 0

    def window(self, index: int, memory_mb: float, outcome: Outcome, end: float) -> None:
        """Count one window of real traffic of one function."""
        fn = self._fns[index]
        self.failed += outcome.ooms + outcome.timeouts
        self.probe_invocations += outcome.probes
        self.probe_cost += outcome.probe_cost
        if outcome.ooms and not fn.in_episode and memory_mb < fn.need:
            fn.in_episode, fn.redeploys, fn.failed = True, 0, 0
        if fn.in_episode:
            fn.failed += outcome.ooms
            self.failed_before_fix += outcome.ooms
        if end >= self.settle_from:
            cost = outcome.cost + outcome.probe_cost
            optimum = outcome.invocations * fn.optimum_per_invocation
            self.cost += cost
            self.optimum_cost += optimum
            fn.cost += cost
            fn.optimum_cost += optimum

    def change(self, index: int, before: float, after: float) -> None:
        """Count one memory change that went live."""
        if after == before:
            return
        fn = self._fns[index]
        self.changes += 1
        direction = 1 if after > before else -1
        reverses = bool(fn.direction) and direction != fn.direction
        if reverses and fn.reversed_last:  # up, down, up (or down, up, down): oscillating
            self.flapping += 1
        fn.direction, fn.reversed_last = direction, reverses
        if fn.in_episode:
            fn.redeploys += 1
            if after >= fn.need:
                fn.episodes.append((fn.redeploys, True))
                fn.in_episode = False

    def synthetic(self, invocations: int, cost: float) -> None:
        """Count invocations a strategy made up to measure a function."""
        self.synthetic_invocations += invocations
        self.synthetic_cost += cost

    def episodes(self) -> list[tuple[int, int, bool]]:
        """Every OOM episode as (function index, redeploys, fixed); open ones are not fixed."""
        out = [(i, r, ok) for i, fn in enumerate(self._fns) for r, ok in fn.episodes]
        out += [(i, fn.redeploys, False) for i, fn in enumerate(self._fns) if fn.in_episode]
        return out

    def costs(self) -> list[tuple[float, float]]:
        """Each function's cost over the settled period and the same traffic's at its optimum."""
        return [(fn.cost, fn.optimum_cost) for fn in self._fns]

    def score(self) -> Score:
        """The figures so far; episodes still open count as not fixed."""
        episodes = [(r, ok) for _, r, ok in self.episodes()]
        fixed = sorted(r for r, ok in episodes if ok)
        one_step = sum(1 for r, ok in episodes if ok and r == 1)
        return Score(
            ooms=len(episodes),
            oom_fixed=len(fixed),
            oom_one_step_fraction=round(one_step / len(episodes), 4) if episodes else 1.0,
            redeploys_per_oom_mean=round(sum(fixed) / len(fixed), 3) if fixed else 0.0,
            redeploys_per_oom_p95=float(fixed[math.ceil(0.95 * len(fixed)) - 1]) if fixed else 0.0,
            failed_invocations=self.failed,
            failed_before_fix=self.failed_before_fix,
            cost=round(self.cost, 4),
            optimum_cost=round(self.optimum_cost, 4),
            cost_ratio_to_optimum=round(self.cost / self.optimum_cost, 4)
            if self.optimum_cost
            else 1.0,
            synthetic_invocations=self.synthetic_invocations,
            synthetic_cost=round(self.synthetic_cost, 4),
            probe_invocations=self.probe_invocations,
            probe_cost=round(self.probe_cost, 4),
            changes=self.changes,
            flapping_changes=self.flapping,
        )
