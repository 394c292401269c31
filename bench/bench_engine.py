"""Benchmark of the pure core: condition evaluations per second, and one cycle's
evaluate + plan + guard for 10,000 functions.

Targets: >= 1,000,000 condition evaluations/s on one core; <= 250 ms of CPU for 10,000
functions.  Run: ``python bench/bench_engine.py [--quick]`` (``--quick``: a short run on
1,000 functions, to check that it runs).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from tuner.decisions.guard import Budget, GuardPolicy, guard
from tuner.decisions.planning import plan_finding
from tuner.domain.model import (
    DependencyFacts,
    FunctionConfig,
    FunctionRef,
    Mode,
    Target,
    WindowFacts,
)
from tuner.engine import Streaks, build_facts, evaluate, fleet_facts, load_rules

ROOT = Path(__file__).resolve().parents[1]


def fleet(n: int, seed: int = 7) -> tuple[list[Target], list[WindowFacts]]:
    """A synthetic fleet: mostly healthy, with 2% OOMs, 2% timeouts, 1% slow data, 1% outages."""
    rng = random.Random(seed)
    targets, windows = [], []
    for i in range(n):
        ref = FunctionRef("aws", f"fn-{i:05d}", "eu-west-1")
        memory = rng.choice([128, 256, 512, 1024])
        config = FunctionConfig(
            memory_mb=memory, timeout_s=30.0, batch_size=100 if i % 3 == 0 else None, cache_ttl_s=0
        )
        targets.append(Target(ref, config, {"team": f"t{i % 20}"}))
        kind = rng.random()
        inv = rng.randint(20, 2000)
        deps = {"db": DependencyFacts("db", inv, 0, rng.uniform(5, 50))}
        w = WindowFacts(
            ref,
            0.0,
            60.0,
            invocations=inv,
            errors=0,
            timeouts=0,
            ooms=0,
            throttles=0,
            cold_starts=rng.randint(0, 5),
            duration_p50_ms=rng.uniform(10, 500),
            duration_p95_ms=rng.uniform(500, 2000),
            duration_p99_ms=rng.uniform(2000, 5000),
            duration_max_ms=rng.uniform(5000, 8000),
            peak_memory_mb=memory * rng.uniform(0.5, 0.9),
            dependencies=deps,
        )
        if kind < 0.02:
            w = _with(w, ooms=3, errors=3, peak_memory_mb=float(memory))
        elif kind < 0.04:
            w = _with(w, timeouts=5, errors=5, duration_max_ms=30000.0, duration_p99_ms=30000.0)
        elif kind < 0.05:
            w = _with(w, dependencies={"db": DependencyFacts("db", inv, 0, 450.0)})
        elif kind < 0.06:
            w = _with(w, errors=inv, dependencies={"db": DependencyFacts("db", inv, inv, 5.0)})
        windows.append(w)
    return targets, windows


def _with(w: WindowFacts, **kw: object) -> WindowFacts:
    from dataclasses import replace

    return replace(w, **kw)  # type: ignore[arg-type]


def bench_conditions(rules_path: Path, seconds: float = 2.0) -> float:
    """Condition evaluations per second over prepared facts (one core)."""
    rules = load_rules([rules_path])
    targets, windows = fleet(1000)
    fl = fleet_facts(len(targets), windows)
    facts = [build_facts(t, w, fl) for t, w in zip(targets, windows, strict=True)]
    evaluators = [r.condition.evaluate for r in rules.rules]
    n = 0
    start = time.process_time()
    while time.process_time() - start < seconds:
        for f in facts:
            for ev in evaluators:
                ev(f)
        n += len(facts) * len(evaluators)
    return n / (time.process_time() - start)


def bench_cycle(
    rules_path: Path, functions: int = 10_000, repeats: int = 5
) -> tuple[float, int, int]:
    """CPU seconds of facts + evaluate + plan + guard for a fleet (best of ``repeats``)."""
    rules = load_rules([rules_path])
    compiled = {r.name: r for r in rules.rules}
    cooldowns = {r.name: r.rule.cooldown for r in rules.rules}
    targets, windows = fleet(functions)
    best = float("inf")
    findings = decisions = 0
    for _ in range(repeats):
        streaks = Streaks()
        start = time.process_time()
        fl = fleet_facts(len(targets), windows)
        planned = []
        findings = 0
        for target, window in zip(targets, windows, strict=True):
            facts = build_facts(target, window, fl)
            found, _ = evaluate(rules, target, facts, streaks, 60.0)
            findings += len(found)
            for finding in found:
                planned.extend(
                    plan_finding(compiled[finding.rule], finding, target, Mode.APPLY, 60.0)
                )
        settled = guard(
            planned, Budget.start([], cooldowns, GuardPolicy(max_changes_per_cycle=1000), 60.0)
        )
        best = min(best, time.process_time() - start)
        decisions = len(settled)
    return best, findings, decisions


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run on 1,000 functions")
    quick = parser.parse_args().quick
    rules_path = ROOT / "rules" / "default.yaml"
    rate = bench_conditions(rules_path, seconds=0.2 if quick else 2.0)
    print(f"condition evaluations/s (one core): {rate:,.0f}  (target >= 1,000,000)")
    functions = 1_000 if quick else 10_000
    seconds, findings, decisions = bench_cycle(rules_path, functions, repeats=1 if quick else 5)
    print(
        f"evaluate + plan + guard, {functions:,} functions: {seconds * 1000:.0f} ms CPU "
        f"({findings} findings, {decisions} decisions)  (target at 10,000: <= 250 ms)"
    )


if __name__ == "__main__":
    main()
