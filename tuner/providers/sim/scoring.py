"""Scoring a simulated run: OOM episodes, failed invocations, cost against the optimum, flapping.

The ledger knows each function's true memory need, so an OOM episode ends exactly when
memory reaches the need: every memory change in between is one redeploy spent on it.
Cost is compared with the optimum over the settled period (the last day), both as what
the traffic cost and as what each successful invocation cost: the billed time of failed
invocations, the tries again they cause, probes and made-up invocations included.
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
    """Of those, the OOMs inside episodes (between a function's first OOM and its fix)."""
    minutes_to_fix_mean: float
    """From an episode's first OOM to the change that met the need, over fixed episodes."""
    minutes_to_fix_p95: float
    cost: float
    """What the fleet's real traffic (and its probes) cost over the settled period, in dollars."""
    optimum_cost: float
    cost_ratio_to_optimum: float
    cost_per_million_successes: float
    """Dollars per million successful invocations over the settled period: the traffic's
    billed cost (a timed-out invocation billed to its timeout), the tries again failures
    cause, probes and made-up invocations, over the invocations that succeeded."""
    cost_per_success_to_optimum: float
    """That against the same traffic at each function's optimum, where every one succeeds."""
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
    in_episode: bool = False
    redeploys: int = 0
    began: float = 0.0
    direction: int = 0
    reversed_last: bool = False
    episodes: list[tuple[int, bool, float]] = field(default_factory=list)
    """(redeploys, fixed, seconds from the first OOM to the fix) per episode."""
    failed: int = 0
    """Invocations killed for memory or stopped at the timeout, over the whole run."""
    cost: float = 0.0
    """What its real traffic (and probes) cost over the settled period."""
    optimum_cost: float = 0.0
    need: float = 0.0
    """The need of the version that ran last."""

    def redeployed(self, memory_mb: float, at: float) -> None:
        """A change went live at ``at``: during an episode, one more redeploy, and the end
        of the episode where the memory now meets the need."""
        if not self.in_episode:
            return
        self.redeploys += 1
        if memory_mb >= self.need:
            self.episodes.append((self.redeploys, True, at - self.began))
            self.in_episode = False


class Ledger:
    """Counts what real traffic saw and paid, and every memory change, per function."""

    def __init__(self, workloads: Sequence[Workload], settle_from: float = math.inf):
        self.settle_from = settle_from
        """Cost is compared with the optimum over windows ending at or after this time."""
        self._fns = [_Fn(need=w.need_mb) for w in workloads]
        self._optimum: dict[int, int] = {}
        """The optimum of each version seen, by the version's id."""
        self.failed = 0
        self.failed_before_fix = 0
        self.cost = 0.0
        self.optimum_cost = 0.0
        self.billed = 0.0
        self.successes = 0.0
        self.invocations = 0
        self.synthetic_invocations = 0
        self.synthetic_cost = 0.0
        self.settled_synthetic_cost = 0.0
        self.probe_invocations = 0
        self.probe_cost = 0.0
        self.trial_cost = 0.0
        """What the invocations run at sizes tried cost over the settled period."""
        self.changes = 0
        self.flapping = 0

    def window(
        self, index: int, memory_mb: float, outcome: Outcome, end: float, version: Workload
    ) -> None:
        """Count one window of real traffic of one function at ``memory_mb``, run by ``version``."""
        fn = self._fns[index]
        fn.need = version.need_mb
        self._count(fn, outcome, end, version)
        if fn.in_episode and memory_mb >= fn.need:  # a new version that needs less
            fn.episodes.append((fn.redeploys, True, end - fn.began))
            fn.in_episode = False
        if outcome.ooms and not fn.in_episode and memory_mb < fn.need:
            fn.in_episode, fn.redeploys = True, 0
            fn.began = outcome.first_oom_at if outcome.first_oom_at is not None else end
        if fn.in_episode:
            self.failed_before_fix += outcome.ooms

    def trial(self, index: int, outcome: Outcome, end: float, version: Workload) -> None:
        """Count the share of a window that ran at a size tried on part of the traffic.

        Its invocations are real ones and count as the rest of the traffic does; the
        function's memory did not change, so they neither begin nor end an episode.
        """
        self._count(self._fns[index], outcome, end, version)
        if end >= self.settle_from:
            self.trial_cost += outcome.cost

    def _count(self, fn: _Fn, outcome: Outcome, end: float, version: Workload) -> None:
        """Failures and probes; over the settled period, cost against the optimum."""
        failed = outcome.ooms + outcome.timeouts
        self.failed += failed
        fn.failed += failed
        self.probe_invocations += outcome.probes
        self.probe_cost += outcome.probe_cost
        if end < self.settle_from or not outcome.invocations:
            return
        cost = outcome.cost + outcome.probe_cost
        best = self._optimum.get(id(version))
        if best is None:
            best = self._optimum[id(version)] = version.optimum_mb()
        optimum = outcome.invocations * version.cost_per_invocation(best, cold=outcome.cold_share)
        self.cost += cost
        self.optimum_cost += optimum
        self.billed += outcome.billed + outcome.probe_cost
        self.successes += outcome.successes
        self.invocations += outcome.invocations
        fn.cost += cost
        fn.optimum_cost += optimum

    def change(self, index: int, before: float, after: float, at: float) -> None:
        """Count one memory change that went live at time ``at``."""
        if after == before:
            return
        fn = self._fns[index]
        self.changes += 1
        direction = 1 if after > before else -1
        reverses = bool(fn.direction) and direction != fn.direction
        if reverses and fn.reversed_last:  # up, down, up (or down, up, down): oscillating
            self.flapping += 1
        fn.direction, fn.reversed_last = direction, reverses
        fn.redeployed(after, at)

    def split(self, index: int, memory_mb: float, need_mb: float, at: float) -> None:
        """Count a change of where payloads split that went live at ``at``: a redeploy that
        can end an episode (the need is a part's now), and never flapping of memory."""
        fn = self._fns[index]
        self.changes += 1
        fn.need = need_mb
        fn.redeployed(memory_mb, at)

    def synthetic(self, invocations: int, cost: float, at: float) -> None:
        """Count invocations a strategy made up at time ``at`` to measure a function."""
        self.synthetic_invocations += invocations
        self.synthetic_cost += cost
        if at >= self.settle_from:
            self.settled_synthetic_cost += cost

    def episodes(self) -> list[tuple[int, int, bool]]:
        """Every OOM episode as (function index, redeploys, fixed); open ones are not fixed."""
        out = [(i, r, ok) for i, fn in enumerate(self._fns) for r, ok, _ in fn.episodes]
        out += [(i, fn.redeploys, False) for i, fn in enumerate(self._fns) if fn.in_episode]
        return out

    def costs(self) -> list[tuple[float, float]]:
        """Each function's cost over the settled period and the same traffic's at its optimum."""
        return [(fn.cost, fn.optimum_cost) for fn in self._fns]

    def failures(self) -> list[int]:
        """Each function's failed invocations over the whole run."""
        return [fn.failed for fn in self._fns]

    def score(self) -> Score:
        """The figures so far; episodes still open count as not fixed."""
        episodes = [(r, ok) for _, r, ok in self.episodes()]
        fixed = sorted(r for r, ok in episodes if ok)
        one_step = sum(1 for r, ok in episodes if ok and r == 1)
        minutes = sorted(s / 60.0 for fn in self._fns for _, ok, s in fn.episodes if ok)
        spent = self.billed + self.settled_synthetic_cost
        per_success = spent / self.successes if self.successes else 0.0
        best_per_success = self.optimum_cost / self.invocations if self.invocations else 0.0
        return Score(
            ooms=len(episodes),
            oom_fixed=len(fixed),
            oom_one_step_fraction=round(one_step / len(episodes), 4) if episodes else 1.0,
            redeploys_per_oom_mean=round(sum(fixed) / len(fixed), 3) if fixed else 0.0,
            redeploys_per_oom_p95=_p95(fixed),
            failed_invocations=self.failed,
            failed_before_fix=self.failed_before_fix,
            minutes_to_fix_mean=round(sum(minutes) / len(minutes), 2) if minutes else 0.0,
            minutes_to_fix_p95=round(_p95(minutes), 2),
            cost=round(self.cost, 4),
            optimum_cost=round(self.optimum_cost, 4),
            cost_ratio_to_optimum=round(self.cost / self.optimum_cost, 4)
            if self.optimum_cost
            else 1.0,
            cost_per_million_successes=round(per_success * 1e6, 4),
            cost_per_success_to_optimum=round(per_success / best_per_success, 4)
            if best_per_success
            else 1.0,
            synthetic_invocations=self.synthetic_invocations,
            synthetic_cost=round(self.synthetic_cost, 4),
            probe_invocations=self.probe_invocations,
            probe_cost=round(self.probe_cost, 4),
            changes=self.changes,
            flapping_changes=self.flapping,
        )


def _p95(values: Sequence[float]) -> float:
    return float(values[math.ceil(0.95 * len(values)) - 1]) if values else 0.0
