"""Workload models of simulated functions: memory need, duration, price and the true optimum.

Each function is one :class:`Workload`, drawn from a seed by :func:`make_fleet`.  Its memory
need per invocation is ``runtime_mb + work_mb + mb_per_kb * payload_kb`` plus, for a leaking
function, ``leak_mb`` for every invocation its worker served before.  Payloads are
``payload_max_kb * u ** skew`` with ``u`` uniform, so the largest payload is exactly
``payload_max_kb`` and large payloads are rare.  Duration is I/O time plus CPU time, and the
CPU part shrinks with memory up to one vCPU (1,769 MB on Lambda).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Literal

CPU_MB_PER_VCPU = 1769.0
"""Lambda gives one full vCPU at 1,769 MB; below that CPU is proportional to memory."""
PRICE_GB_S = 0.0000166667
"""Lambda's x86 price per GB-second (us-east-1)."""
PRICE_REQUEST = 0.0000002
"""Lambda's price per request."""
DURATION_SPREAD = 0.8, 1.0, 4.0
"""Duration is ``mean * (a + b * u ** c)``: its mean is the model's duration, its maximum 1.8x."""
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240
DEPENDENCIES = ("orders-db", "catalog-api", "payments-api", "search", "blob-store")

Kind = Literal["constant", "payload", "leak"]


@dataclass(frozen=True, slots=True)
class Workload:
    """The hidden truth about one simulated function, and its starting configuration."""

    name: str
    kind: Kind
    runtime_mb: float
    """Memory of the runtime and code, before any work."""
    work_mb: float
    """Memory every invocation needs for its work, whatever its payload."""
    mb_per_kb: float
    """Memory the work grows by per KB of payload (0 for constant and leaking functions)."""
    payload_max_kb: float
    skew: float
    """Payloads are ``payload_max_kb * u ** skew``: the larger, the rarer big payloads."""
    leak_mb: float
    """Memory a worker keeps after each invocation (0 unless leaking)."""
    worker_life: int
    """Invocations a worker serves before the platform recycles it."""
    chunk: float
    """Share of the work allocated at once: 1.0 is one buffer, 0.1 ten allocations."""
    cpu_ms: float
    """CPU time of one invocation with a full vCPU."""
    io_ms: float
    """Time spent waiting (network, disk), which memory does not change."""
    rate_per_s: float
    """Mean invocations per second over a day."""
    phase: float
    """Where in the day traffic peaks, as a share of the day."""
    timeout_s: float
    memory_mb: int
    """Memory configured when the simulation starts."""
    dependency: str

    @property
    def start_mb(self) -> float:
        """Memory of a fresh worker: the runtime and the work of a zero-byte payload."""
        return self.runtime_mb + self.work_mb

    @property
    def need_mb(self) -> float:
        """The most memory any invocation ever needs."""
        if self.kind == "leak":
            return self.start_mb + self.leak_mb * self.worker_life
        return self.start_mb + self.mb_per_kb * self.payload_max_kb

    def duration_ms(self, memory_mb: float, cpu_scales: bool = True) -> float:
        """Mean duration at a memory size."""
        share = min(1.0, memory_mb / CPU_MB_PER_VCPU) if cpu_scales else 1.0
        return self.io_ms + self.cpu_ms / share

    def cost_per_invocation(self, memory_mb: float, cpu_scales: bool = True) -> float:
        """Price of one invocation: memory times mean duration, plus the request."""
        seconds = self.duration_ms(memory_mb, cpu_scales) / 1000.0
        return PRICE_REQUEST + PRICE_GB_S * memory_mb / 1024.0 * seconds

    def max_duration_ms(self, memory_mb: float, cpu_scales: bool = True) -> float:
        """The longest an invocation takes at a memory size."""
        a, b, _ = DURATION_SPREAD
        return self.duration_ms(memory_mb, cpu_scales) * (a + b)

    def optimum_mb(self, cpu_scales: bool = True) -> int:
        """The cheapest memory with no OOM and no timeout (the latency objective).

        Below one vCPU, cost per invocation is ``memory * io + cpu * 1769`` (rising with
        memory), and above it both memory and cost rise: the smallest memory that meets
        both constraints is the cheapest.
        """
        floor_mb = max(MIN_MEMORY_MB, math.ceil(self.need_mb))
        if cpu_scales:
            a, b, _ = DURATION_SPREAD
            budget_ms = self.timeout_s * 1000.0 / (a + b) - self.io_ms
            if budget_ms > 0 and self.cpu_ms > 0:
                share = self.cpu_ms / budget_ms
                if share <= 1.0:
                    floor_mb = max(floor_mb, math.ceil(share * CPU_MB_PER_VCPU))
        return min(MAX_MEMORY_MB, floor_mb)

    def rate_at(self, t: float) -> float:
        """Invocations per second at time ``t``: a daily wave between 20% and 180% of the mean."""
        day = t / 86_400.0
        return self.rate_per_s * (1.0 + 0.8 * math.sin(2.0 * math.pi * (day - self.phase)))


def make_fleet(functions: int, seed: int) -> list[Workload]:
    """A deterministic fleet: a third each constant, growing with payload, or leaking.

    About a quarter of the functions start with too little memory (some 3x, some 5x
    too little), about half with too much, the rest close to right.
    """
    rng = random.Random(f"tuner-sim-fleet:{seed}")
    return [_workload(rng, i) for i in range(functions)]


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
    need = partial.need_mb
    draw = rng.random()
    if draw < 0.25:  # too little: 1.2x to 5x short
        factor = rng.choice((1 / 3, 1 / 5, rng.uniform(1 / 2.5, 1 / 1.2)))
    elif draw < 0.75:  # too much
        factor = rng.uniform(1.5, 4.0)
    else:  # about right
        factor = rng.uniform(1.1, 1.4)
    memory = int(min(MAX_MEMORY_MB, max(MIN_MEMORY_MB, round(need * factor / 64) * 64)))
    if kind == "leak":  # a leak shows over a worker's life: its first invocations fit
        memory = max(memory, math.ceil(partial.start_mb * 1.1 / 64) * 64)
    # A timeout that the function meets at its optimum with room to spare, except for a
    # few CPU-bound functions whose timeout needs more CPU (more memory) than the memory need.
    slowest = partial.max_duration_ms(max(MIN_MEMORY_MB, need))
    tight = cpu_ms > 200 and rng.random() < 0.15
    timeout_s = math.ceil(slowest * (0.8 if tight else 2.5) / 1000.0 + 1.0)
    return replace(partial, timeout_s=float(min(900, timeout_s)), memory_mb=memory)
