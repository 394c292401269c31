"""Drawing a simulated fleet from a seed: how each function uses memory, and its family.

Every function first gets how it uses memory (constant, growing with payload, leaking),
its CPU and I/O time, traffic and a starting configuration.  Then, from a stream of its
own, about half of the functions get a family that real functions show
(:data:`FAMILIES`): CPU-bound work that more memory makes cheaper, bursty traffic, a
daily cycle, a long tail of payloads, heavy cold starts, or a deploy that changes the
need.  The plain half is drawn exactly as it was before families existed.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

from tuner.providers.sim.workloads import (
    DEPENDENCIES,
    MAX_MEMORY_MB,
    MIN_MEMORY_MB,
    SLOT_S,
    Family,
    Kind,
    Workload,
)

FAMILIES: dict[Family, float] = {
    "plain": 5.0,
    "cpu-bound": 1.0,
    "bursty": 0.8,
    "daily": 0.8,
    "long-tail": 0.8,
    "cold-start": 0.8,
    "deploy": 0.8,
}
"""Families and their weights: half plain, a tenth CPU-bound, 8% each of the others."""
SPLITTING = 0.5
"""Share of the long-tail functions whose code uses tuner_handler's split (by a list field,
say), so that a large payload can run in parts; the others can only be given memory."""
DAY_S = 86_400.0


def make_fleet(functions: int, seed: int) -> list[Workload]:
    """A deterministic fleet: a third each constant, growing with payload, or leaking.

    About a quarter of the functions start with too little memory (some 3x, some 5x
    too little), about half with too much, the rest close to right.
    """
    rng = random.Random(f"tuner-sim-fleet:{seed}")
    fleet = [_workload(rng, i) for i in range(functions)]
    return [
        _with_family(w, random.Random(f"tuner-sim-family:{seed}:{i}")) for i, w in enumerate(fleet)
    ]


def _workload(rng: random.Random, i: int) -> Workload:
    kind: Kind = rng.choices(("constant", "payload", "leak"), weights=(4, 4, 2))[0]
    runtime = rng.uniform(40, 90)
    work = rng.uniform(10, 400) * (2.0 if rng.random() < 0.2 else 1.0)
    payload_max = rng.uniform(50, 5000)
    mb_per_kb = rng.uniform(100, 1500) / payload_max if kind == "payload" else 0.0
    worker_life = rng.randint(200, 2000)
    leak = rng.uniform(100, 800) / worker_life if kind == "leak" else 0.0
    chunk = rng.choices((1.0, 0.5, 0.1), weights=(7, 2, 1))[0]
    cpu_ms = rng.choice((0.0, rng.uniform(5, 200), rng.uniform(200, 3000)))
    io_ms = rng.uniform(10, 1500)
    partial = Workload(
        name=f"fn-{i:05d}",
        kind=kind,
        runtime_mb=runtime,
        work_mb=work,
        mb_per_kb=mb_per_kb,
        payload_max_kb=payload_max,
        skew=rng.uniform(1.5, 5.0),
        leak_mb=leak,
        worker_life=worker_life,
        chunk=chunk,
        cpu_ms=cpu_ms,
        io_ms=io_ms,
        rate_per_s=10 ** rng.uniform(-2.0, 0.7),
        phase=rng.random(),
        timeout_s=0.0,
        memory_mb=MIN_MEMORY_MB,
        dependency=rng.choice(DEPENDENCIES),
    )
    return _configured(partial, rng)


def _configured(w: Workload, rng: random.Random, need: float | None = None) -> Workload:
    """The function with a starting memory drawn around ``need`` and a timeout to suit it."""
    need = w.need_mb if need is None else need
    draw = rng.random()
    if draw < 0.25:  # too little: 1.2x to 5x short
        factor = rng.choice((1 / 3, 1 / 5, rng.uniform(1 / 2.5, 1 / 1.2)))
    elif draw < 0.75:  # too much
        factor = rng.uniform(1.5, 4.0)
    else:  # about right
        factor = rng.uniform(1.1, 1.4)
    memory = int(min(MAX_MEMORY_MB, max(MIN_MEMORY_MB, round(need * factor / 64) * 64)))
    if w.kind == "leak":  # a leak shows over a worker's life: its first invocations fit
        memory = max(memory, math.ceil(w.start_mb * 1.1 / 64) * 64)
    # A timeout that the function meets at its optimum with room to spare, except for a
    # few CPU-bound functions whose timeout needs more CPU (more memory) than the memory need.
    slowest = w.max_duration_ms(max(MIN_MEMORY_MB, need))
    tight = w.cpu_ms > 200 and rng.random() < 0.15
    timeout_s = math.ceil(slowest * (0.8 if tight else 2.5) / 1000.0 + 1.0)
    return replace(w, timeout_s=float(min(900, timeout_s)), memory_mb=memory)


def _with_family(w: Workload, rng: random.Random) -> Workload:
    """The function with the family drawn for it (most stay plain)."""
    family: Family = rng.choices(tuple(FAMILIES), weights=tuple(FAMILIES.values()))[0]
    if family == "plain":
        return w
    w = replace(w, family=family)
    if family == "cpu-bound":
        # a managed runtime whose collector and compiler want CPU beside the handler
        busy = replace(
            w,
            runtime_mb=rng.uniform(150, 350),
            work_mb=rng.uniform(20, 300),
            mb_per_kb=w.mb_per_kb and rng.uniform(50, 400) / w.payload_max_kb,
            leak_mb=w.leak_mb and rng.uniform(50, 300) / w.worker_life,
            cpu_ms=rng.uniform(300, 3000),
            io_ms=rng.uniform(5, 150),
            cpu_overhead=rng.uniform(0.05, 0.2),
        )
        return _configured(busy, rng)
    if family in ("bursty", "daily"):
        return replace(w, traffic=family, burst_key=rng.getrandbits(62))
    if family == "long-tail":
        usual = w if w.kind == "payload" else _growing(w, rng)
        ceiling = (6000.0 - usual.start_mb) / usual.mb_per_kb
        tail = replace(
            usual,
            tail_share=10 ** rng.uniform(-5.0, -3.3),
            tail_kb=max(
                usual.payload_max_kb, min(ceiling, usual.payload_max_kb * rng.uniform(2, 4))
            ),
        )
        tail = _configured(tail, rng, need=usual.need_mb)  # sized for the usual payloads
        return replace(tail, splits=rng.random() < SPLITTING)
    if family == "cold-start":
        heavy = replace(
            w, runtime_mb=w.runtime_mb + rng.uniform(200, 800), init_cpu_ms=rng.uniform(1000, 8000)
        )
        heavy = _configured(heavy, rng)
        warm = heavy.max_duration_ms(heavy.need_mb) - heavy.init_ms(heavy.need_mb)
        slack = rng.uniform(0.6, 1.3)  # below 1: a cold start at the need times out
        wanted = max(warm * 2.5, heavy.max_duration_ms(heavy.need_mb) * slack)
        return replace(heavy, timeout_s=float(min(900, math.ceil(wanted / 1000.0 + 1.0))))
    # deploy: a new version, between day 1 and day 5, that needs less or more
    factor = rng.uniform(0.4, 0.7) if rng.random() < 0.5 else rng.uniform(1.5, 3.0)
    at = math.floor(rng.uniform(1.0, 5.0) * DAY_S / SLOT_S) * SLOT_S
    after = replace(
        w, work_mb=w.work_mb * factor, mb_per_kb=w.mb_per_kb * factor, leak_mb=w.leak_mb * factor
    )
    return replace(w, deploy_at=at, after_deploy=after)


def _growing(w: Workload, rng: random.Random) -> Workload:
    """The function with a need that grows with its payload (no leak)."""
    return replace(
        w, kind="payload", leak_mb=0.0, mb_per_kb=rng.uniform(100, 1500) / w.payload_max_kb
    )
