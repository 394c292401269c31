"""Workload models of simulated functions: memory need, duration, price, traffic and the optimum.

Each function is one :class:`Workload`, drawn from a seed by
:func:`tuner.providers.sim.fleet.make_fleet`.  Its memory need per invocation is
``runtime_mb + work_mb + mb_per_kb * payload_kb`` plus, for a leaking function, ``leak_mb``
for every invocation its worker served before.  Payloads are ``payload_max_kb * u ** skew``
with ``u`` uniform, so the largest usual payload is exactly ``payload_max_kb`` and large
payloads are rare; a function with a long tail also gets, once in ``1 / tail_share``
invocations, a huge payload of 90% to 100% of ``tail_kb``.  A function whose code splits
(``splits``) may run a payload above ``split_kb`` as parts of at most that size, each an
invocation of its own that needs only a part's memory.  Duration is I/O time plus CPU
time; the CPU part shrinks with memory up to one vCPU (1,769 MB on Lambda), and where the
runtime's own threads need CPU too (``cpu_overhead``), the handler gets less than its
share at small sizes, so that more memory can cost less.  A cold start adds the init's
CPU time.  A deploy can change the need (``after_deploy``).
"""

from __future__ import annotations

import math
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
KEEP_WARM_S = 600.0
"""A worker idle this long is recycled: at ``r`` invocations a second, ``1 / (1 + r * 600)``
of invocations start a new worker."""
SLOT_S = 900.0
"""Traffic is drawn per 15-minute slot of the virtual clock (bursts, deploys align to it)."""
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240
DEPENDENCIES = ("orders-db", "catalog-api", "payments-api", "search", "blob-store")

Kind = Literal["constant", "payload", "leak"]
Family = Literal["plain", "cpu-bound", "bursty", "daily", "long-tail", "cold-start", "deploy"]
"""What else the function shows, beside how it uses memory (``plain``: nothing more)."""
Traffic = Literal["wave", "daily", "bursty"]
"""``wave``: 20% to 180% of the mean over a day; ``daily``: busy by day, nearly idle at
night; ``bursty``: 30% of the mean, with a burst of 7.3x in one slot in ten."""
BURST_SHARE = 0.1
BURST_QUIET = 0.3
BURST_FACTOR = (1.0 - (1.0 - BURST_SHARE) * BURST_QUIET) / BURST_SHARE


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
    family: Family = "plain"
    traffic: Traffic = "wave"
    cpu_overhead: float = 0.0
    """vCPU the runtime's own threads (collector, compiler) want beside the handler: at a
    share ``s`` of a vCPU the handler gets ``s * s / (s + cpu_overhead)``."""
    init_cpu_ms: float = 0.0
    """CPU time of a cold start's init (loading the code and what it loads) at a full vCPU."""
    tail_share: float = 0.0
    """Share of invocations that carry a huge payload (a long tail)."""
    tail_kb: float = 0.0
    """The largest huge payload; each is 90% to 100% of it."""
    burst_key: int = 0
    """Which slots are bursts (with ``traffic == "bursty"``)."""
    deploy_at: float = math.inf
    """When a new version is deployed (seconds on the virtual clock)."""
    after_deploy: Workload | None = None
    """The new version: the same function with another need."""
    splits: bool = False
    """Its code uses tuner_handler's split: it has the ``split_above_kb`` knob."""
    split_kb: float = math.inf
    """Payloads larger than this run as parts of at most this size (``split_above_kb``)."""

    @property
    def start_mb(self) -> float:
        """Memory of a fresh worker: the runtime and the work of a zero-byte payload."""
        return self.runtime_mb + self.work_mb

    @property
    def largest_payload_kb(self) -> float:
        """The largest payload any invocation carries (the long tail's, where there is one)."""
        return max(self.payload_max_kb, self.tail_kb)

    @property
    def need_mb(self) -> float:
        """The most memory any invocation ever needs (a part, where large payloads split)."""
        return self._need(min(self.largest_payload_kb, self.split_kb))

    @property
    def whole_need_mb(self) -> float:
        """The most memory any invocation would need with no payload split."""
        return self._need(self.largest_payload_kb)

    def _need(self, payload_kb: float) -> float:
        if self.kind == "leak":
            return self.start_mb + self.leak_mb * self.worker_life
        return self.start_mb + self.mb_per_kb * payload_kb

    def split_at(self, split_kb: float) -> Workload:
        """The function (and its next version) with payloads above ``split_kb`` split (0: none)."""
        kb = split_kb if split_kb > 0 else math.inf
        after = self.after_deploy.split_at(split_kb) if self.after_deploy is not None else None
        return replace(self, split_kb=kb, after_deploy=after)

    def split_parts(self, usual: int, huge: int) -> float:
        """The part invocations that ``usual`` usual and ``huge`` huge payloads split into."""
        if self.split_kb == math.inf or self.mb_per_kb <= 0:
            return 0.0
        over = 1.0 - float(min(1.0, self.split_kb / self.payload_max_kb) ** (1.0 / self.skew))
        parts = usual * over * math.ceil(self.payload_max_kb / self.split_kb)
        if huge and self.tail_kb > self.split_kb:
            parts += huge * math.ceil(self.tail_kb / self.split_kb)
        return parts

    def version_at(self, t: float) -> Workload:
        """The version running at time ``t``."""
        if t >= self.deploy_at and self.after_deploy is not None:
            return self.after_deploy
        return self

    def cpu_share(self, memory_mb: float, cpu_scales: bool = True) -> float:
        """Share of a vCPU the handler gets at a memory size."""
        if not cpu_scales:
            return 1.0
        s = memory_mb / CPU_MB_PER_VCPU
        if self.cpu_overhead > 0:
            s = s * s / (s + self.cpu_overhead)
        return min(1.0, s)

    def duration_ms(self, memory_mb: float, cpu_scales: bool = True) -> float:
        """Mean duration of a warm invocation at a memory size."""
        return self.io_ms + self.cpu_ms / self.cpu_share(memory_mb, cpu_scales)

    def cpu_time_ms(self, memory_mb: float) -> float:
        """CPU time of one invocation over all its threads (as Lambda Insights' ``cpu_total_time``).

        The runtime's threads run beside the handler: at a share ``s`` of a vCPU they take
        ``o / s`` of the handler's CPU time.
        """
        if not self.cpu_overhead:
            return self.cpu_ms
        return self.cpu_ms * (1.0 + self.cpu_overhead * CPU_MB_PER_VCPU / memory_mb)

    def init_ms(self, memory_mb: float, cpu_scales: bool = True) -> float:
        """Duration of a cold start's init at a memory size (added to its invocation)."""
        if not self.init_cpu_ms:
            return 0.0
        return self.init_cpu_ms / self.cpu_share(memory_mb, cpu_scales)

    def cold_share(self, rate_per_s: float | None = None) -> float:
        """Share of invocations that start a new worker at a rate (the mean rate by default)."""
        rate = self.rate_per_s if rate_per_s is None else rate_per_s
        return 1.0 / (1.0 + max(0.0, rate) * KEEP_WARM_S)

    def cost_per_invocation(
        self, memory_mb: float, cpu_scales: bool = True, cold: float | None = None
    ) -> float:
        """Price of one invocation: memory times mean duration (with its share of inits)."""
        share = self.cold_share() if cold is None else cold
        ms = self.duration_ms(memory_mb, cpu_scales) + share * self.init_ms(memory_mb, cpu_scales)
        return PRICE_REQUEST + PRICE_GB_S * memory_mb / 1024.0 * ms / 1000.0

    def max_duration_ms(self, memory_mb: float, cpu_scales: bool = True) -> float:
        """The longest an invocation takes at a memory size (a slow one that started cold)."""
        a, b, _ = DURATION_SPREAD
        slowest = self.duration_ms(memory_mb, cpu_scales) * (a + b)
        return slowest + self.init_ms(memory_mb, cpu_scales)

    def optimum_mb(self, cpu_scales: bool = True) -> int:
        """The cheapest memory with no OOM and no timeout, no payload split (the latency objective).

        With ``m = 1769 s``, cost per invocation is ``1769 * (s * io + C * m / share)``
        with ``C`` the CPU time (with its share of inits): below one vCPU ``m / share`` is
        ``1769 * (1 + o / s)`` for a runtime whose threads want ``o`` vCPU, so cost is
        lowest at ``s = sqrt(C * o / io)`` and rises on either side; with ``o = 0`` it
        rises with memory.  The answer is that size, or the smallest that meets both
        constraints where it is larger.
        """
        floor_mb = max(MIN_MEMORY_MB, math.ceil(self.whole_need_mb))  # memory alone
        if not cpu_scales:
            return min(MAX_MEMORY_MB, floor_mb)
        a, b, _ = DURATION_SPREAD
        cpu = self.cpu_ms * (a + b) + self.init_cpu_ms
        budget_ms = self.timeout_s * 1000.0 - self.io_ms * (a + b)
        if budget_ms > 0 and cpu > 0:
            needed = cpu / budget_ms  # the handler's share of a vCPU the slowest needs
            if needed <= 1.0:
                o = self.cpu_overhead
                s = (needed + math.sqrt(needed * needed + 4 * needed * o)) / 2 if o else needed
                floor_mb = max(floor_mb, math.ceil(s * CPU_MB_PER_VCPU))
        o = self.cpu_overhead
        if o > 0:
            work = self.cpu_ms + self.cold_share() * self.init_cpu_ms
            cap = (1.0 + math.sqrt(1.0 + 4.0 * o)) / 2.0  # the share at which it gets a vCPU
            best = min(cap, math.sqrt(work * o / self.io_ms)) if self.io_ms > 0 else cap
            floor_mb = max(floor_mb, round(best * CPU_MB_PER_VCPU))
        return min(MAX_MEMORY_MB, floor_mb)

    def rate_at(self, t: float) -> float:
        """Invocations per second at time ``t``, by the shape of its traffic."""
        day = t / 86_400.0
        wave = math.sin(2.0 * math.pi * (day - self.phase))
        if self.traffic == "daily":  # a mean of 1: 0.02 + 0.98 * 4 * E[max(0, sin)^2]
            return self.rate_per_s * (0.02 + 3.92 * max(0.0, wave) ** 2)
        if self.traffic == "bursty":
            slot = math.floor(t / SLOT_S)
            burst = _unit_hash(self.burst_key, slot) < BURST_SHARE
            return self.rate_per_s * (BURST_FACTOR if burst else BURST_QUIET)
        return self.rate_per_s * (1.0 + 0.8 * wave)


def _unit_hash(key: int, slot: int) -> float:
    """A number in [0, 1) that depends only on ``key`` and ``slot`` (splitmix64)."""
    x = (key * 0x9E3779B97F4A7C15 + slot * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return ((x ^ (x >> 31)) >> 11) / float(1 << 53)
