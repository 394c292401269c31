"""Traffic slots: how many invocations a slot holds, how many run out of memory, and when.

Traffic is drawn per slot of the virtual clock (:data:`~.workloads.SLOT_S`), from the
seed and the slot's bounds alone, so strategies run on separate copies of a fleet see the
same invocations.  A window that covers part of a slot (a cycle run early, a change in
the middle of a slot) gets its share of the slot's invocations and of its OOMs: the
``k``-th of a slot's ``n`` invocations arrives at ``(k - offset) / n`` of the slot, and its
failing ones are spread evenly among them, so the parts of a slot always add up to the
slot, and the first OOM has a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tuner.providers.sim.workloads import Workload

DRAWS = 8
"""Uniform numbers one slot of one function consumes for its traffic (as before parts)."""
PART_DRAWS = 4
"""More uniform numbers per slot and function: where its invocations and OOMs fall in the
slot, and how many huge payloads it carries and how large the largest is."""
U_COUNT, U_ROUND, U_PEAK, U_FAILED, U_SLOWEST, U_TIMEOUTS, U_DEPENDENCY, U_PROBE = range(DRAWS)
U_INVOCATIONS_AT, U_SPARE, U_HUGE, U_HUGE_MAX = range(DRAWS, DRAWS + PART_DRAWS)


@dataclass(frozen=True, slots=True)
class Part:
    """A part ``[start, end)`` of the traffic slot ``[slot_start, slot_end)``."""

    slot_start: float
    slot_end: float
    start: float
    end: float

    @property
    def lo(self) -> float:
        """Where the part starts, as a share of the slot."""
        return (self.start - self.slot_start) / (self.slot_end - self.slot_start)

    @property
    def hi(self) -> float:
        """Where the part ends, as a share of the slot."""
        return (self.end - self.slot_start) / (self.slot_end - self.slot_start)

    @property
    def whole(self) -> bool:
        """True when the part is the whole slot."""
        return self.start == self.slot_start and self.end == self.slot_end


def stochastic_round(x: float, u: float) -> int:
    """``x`` rounded down or up, up with probability its fraction (``u`` uniform)."""
    return int(math.floor(x + u))


def arrived(count: int, share: float, offset: float) -> int:
    """How many of a slot's ``count`` invocations arrived by ``share`` of it.

    The ``k``-th arrives at ``(k - offset) / count`` of the slot.
    """
    if share >= 1.0:
        return count
    return max(0, min(count, math.floor(count * share + offset)))


def counted_in(count: int, part: Part, offset: float) -> int:
    """How many of a slot's ``count`` events fall in the part (they add up over the slot)."""
    return arrived(count, part.hi, offset) - arrived(count, part.lo, offset)


def _failed_among(first: int, n: int, failed: int) -> int:
    """How many of the first ``first`` of ``n`` invocations fail, ``failed`` spread evenly."""
    return first if failed >= n else first * failed // n


def failed_in(n: int, failed: int, part: Part, offset: float) -> int:
    """How many of a slot's ``failed`` of ``n`` invocations fall in the part (never more than
    the part's invocations; they add up over the slot)."""
    lo, hi = arrived(n, part.lo, offset), arrived(n, part.hi, offset)
    return _failed_among(hi, n, failed) - _failed_among(lo, n, failed)


def next_failure(n: int, failed: int, after: float, offset: float) -> float | None:
    """The share of the slot at which the first failing invocation after ``after`` arrives."""
    if failed <= 0:
        return None
    j = _failed_among(arrived(n, after, offset), n, failed) + 1
    if j > failed:
        return None
    k = j if failed >= n else -(-j * n // failed)  # the first invocation of which j fail
    return (k - offset) / n


def slot_invocations(w: Workload, slot_start: float, slot_end: float, u: Sequence[float]) -> int:
    """Invocations of the whole slot."""
    mean = w.rate_at((slot_start + slot_end) / 2) * (slot_end - slot_start)
    return stochastic_round(mean * (0.7 + 0.6 * u[U_COUNT]), u[U_ROUND])


def fitting(w: Workload, memory_mb: float) -> float:
    """The uniform draw below which a usual payload fits in ``memory_mb`` (1.0: every one fits)."""
    room = memory_mb - w.start_mb
    if w.mb_per_kb <= 0:
        return 1.0 if room >= 0 else 0.0
    if room <= 0:
        return 0.0
    if room / w.mb_per_kb >= w.split_kb:
        return 1.0  # a larger payload runs as parts that fit
    return float(min(1.0, (room / w.mb_per_kb / w.payload_max_kb) ** (1.0 / w.skew)))


def huge_fitting(w: Workload, memory_mb: float) -> float:
    """The share of huge payloads (90% to 100% of ``tail_kb``) that fit in ``memory_mb``."""
    if w.tail_kb <= 0 or w.mb_per_kb <= 0:
        return 1.0
    largest_kb = (memory_mb - w.start_mb) / w.mb_per_kb
    if largest_kb >= w.split_kb:
        return 1.0  # each runs as parts that fit
    if w.split_kb < 0.9 * w.tail_kb:
        return 0.0  # each runs as parts, and a part does not fit
    return min(1.0, max(0.0, (largest_kb / w.tail_kb - 0.9) / 0.1))


def served_per_worker(w: Workload, memory_mb: float) -> int:
    """Invocations a leaking worker serves before it runs out of memory at ``memory_mb``."""
    return math.floor(max(0.0, memory_mb - w.start_mb) / w.leak_mb)


def slot_ooms(w: Workload, memory_mb: float, n: int, u: Sequence[float]) -> tuple[int, int]:
    """Of a slot's ``n`` invocations at ``memory_mb``: those killed for memory, and the huge ones."""
    if w.kind == "leak":
        served = served_per_worker(w, memory_mb)
        if served >= w.worker_life:
            return 0, 0
        return min(n, stochastic_round(n / (served + 1), u[U_ROUND])), 0
    huge = min(n, stochastic_round(n * w.tail_share, u[U_HUGE])) if w.tail_share else 0
    u_fit = fitting(w, memory_mb)
    usual = stochastic_round((n - huge) * (1.0 - u_fit), u[U_ROUND]) if u_fit < 1.0 else 0
    failed_huge = huge - math.floor(huge * huge_fitting(w, memory_mb)) if huge else 0
    return min(n, usual + failed_huge), huge


def first_oom(w: Workload, memory_mb: float, part: Part, u: Sequence[float]) -> float | None:
    """When the first invocation of the part runs out of memory at ``memory_mb``, or None."""
    n = slot_invocations(w, part.slot_start, part.slot_end, u)
    ooms, _ = slot_ooms(w, memory_mb, n, u)
    at = next_failure(n, ooms, part.lo, u[U_INVOCATIONS_AT])
    if at is None or at >= part.hi:
        return None
    return part.slot_start + at * (part.slot_end - part.slot_start)
