"""Figures of the tuning benchmark: one strategy on one fleet, by family, and over many fleets.

:func:`figures` reads a strategy's ledger after its run (the score, and the same figures
per family of functions); :func:`summary` gives the mean and the worst fleet of each
figure over seeds; :func:`targets` checks tuner's figures against the targets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tuner.providers.sim import SimProvider

FIGURES: dict[str, int] = {
    "oom_one_step_fraction": 1,
    "redeploys_per_oom_mean": -1,
    "failed_invocations": -1,
    "failed_before_fix": -1,
    "minutes_to_fix_mean": -1,
    "cost_ratio_to_optimum": -1,
    "cost_per_success_to_optimum": -1,
    "cost_per_million_successes": -1,
    "synthetic_invocations": -1,
    "probe_invocations": -1,
    "flapping_changes": -1,
    "changes": -1,
}
"""The figures compared, and which way is better (1: higher, -1: lower)."""


@dataclass(frozen=True)
class Family:
    """One family's figures for one strategy on one fleet."""

    functions: int
    cost: float
    optimum_cost: float
    episodes: int
    one_step: int
    failed: int

    @property
    def cost_ratio(self) -> float:
        """Its cost over the settled period against the same traffic at the optimum."""
        return self.cost / self.optimum_cost if self.optimum_cost else 1.0

    def as_json(self) -> dict[str, float | int]:
        """The family's figures as a JSON object."""
        return {
            "functions": self.functions,
            "cost": round(self.cost, 4),
            "optimum_cost": round(self.optimum_cost, 4),
            "cost_ratio_to_optimum": round(self.cost_ratio, 4),
            "episodes": self.episodes,
            "one_step": self.one_step,
            "failed_invocations": self.failed,
        }


def figures(provider: SimProvider) -> dict[str, Any]:
    """The score of a strategy's run and its figures by family of functions."""
    ledger = provider.ledger
    score = ledger.score().as_json()
    costs, failures = ledger.costs(), ledger.failures()
    episodes: dict[int, list[bool]] = {}
    for i, redeploys, fixed in ledger.episodes():
        episodes.setdefault(i, []).append(fixed and redeploys == 1)
    families: dict[str, Family] = {}
    for i, w in enumerate(provider.workloads):
        f = families.get(w.family, Family(0, 0.0, 0.0, 0, 0, 0))
        mine = episodes.get(i, [])
        families[w.family] = Family(
            f.functions + 1,
            f.cost + costs[i][0],
            f.optimum_cost + costs[i][1],
            f.episodes + len(mine),
            f.one_step + sum(mine),
            f.failed + failures[i],
        )
    return {**score, "families": {k: v.as_json() for k, v in sorted(families.items())}}


def summary(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """For each figure, its mean over the runs and its worst run (by which way is better)."""
    out: dict[str, dict[str, float]] = {}
    for name, better in FIGURES.items():
        values = [float(r[name]) for r in runs]
        worst = min(values) if better > 0 else max(values)
        out[name] = {"mean": sum(values) / len(values), "worst": worst}
    return out


def family_summary(
    by_seed: Mapping[int, Mapping[str, Mapping[str, Any]]],
) -> dict[str, dict[str, dict[str, float]]]:
    """Per family and strategy, the mean and the worst seed of the family's cost / optimum."""
    ratios: dict[str, dict[str, list[float]]] = {}
    for runs in by_seed.values():
        for name, r in runs.items():
            for family, f in r["families"].items():
                by_name = ratios.setdefault(family, {})
                by_name.setdefault(name, []).append(f["cost_ratio_to_optimum"])
    return {
        family: {n: {"mean": sum(v) / len(v), "worst": max(v)} for n, v in by_name.items()}
        for family, by_name in sorted(ratios.items())
    }


def targets(by_seed: Mapping[int, Mapping[str, Mapping[str, Any]]]) -> list[tuple[str, bool, str]]:
    """Tuner's targets over the seeds: (target, met, the figure that says so)."""
    tuner = [runs["tuner"] for runs in by_seed.values()]
    cpu = [
        r["families"]["cpu-bound"]["cost_ratio_to_optimum"]
        for r in tuner
        if "cpu-bound" in r["families"]
    ]
    one_step = min(r["oom_one_step_fraction"] for r in tuner)
    cost = max(r["cost_ratio_to_optimum"] for r in tuner)
    lowest = _tuner_lowest(by_seed, "cost_per_success_to_optimum")
    fewest = _tuner_lowest(by_seed, "failed_invocations")
    synthetic = sum(r["synthetic_invocations"] for r in tuner)
    flapping = sum(r["flapping_changes"] for r in tuner)
    seeds = len(by_seed)
    return [
        ("one step >= 95% on the worst seed", one_step >= 0.95, f"{one_step:.1%}"),
        ("cost / optimum <= 1.05 on the worst seed", cost <= 1.05, f"{cost:.3f}"),
        (
            "lowest cost per successful invocation on every seed",
            len(lowest) == seeds,
            f"{len(lowest)} of {seeds} seeds",
        ),
        ("0 synthetic invocations", synthetic == 0, str(synthetic)),
        ("0 flapping", flapping == 0, str(flapping)),
        (
            "fewest failed invocations on every seed",
            len(fewest) == seeds,
            f"{len(fewest)} of {seeds} seeds",
        ),
        (
            "CPU-bound family within 5% of the optimum on the worst seed",
            bool(cpu) and max(cpu) <= 1.05,
            f"{max(cpu):.3f}" if cpu else "none",
        ),
    ]


def _tuner_lowest(by_seed: Mapping[int, Mapping[str, Mapping[str, Any]]], figure: str) -> list[int]:
    """The seeds on which tuner's ``figure`` is lower than every other strategy's."""
    return [
        seed
        for seed, runs in by_seed.items()
        if all(runs["tuner"][figure] < r[figure] for name, r in runs.items() if name != "tuner")
    ]
