"""What an invocation cost at each size a function ran at, as its provider measures it.

For each function, since its version went live: the invocations at each memory size,
of the function's own size and of sizes tried on a share of its traffic, and their mean
duration.  A size at which any invocation ran out of memory or reached the timeout is
left out: its cost says nothing of a size that works.  The facts name the cheapest size
and its nearest neighbours (:mod:`tuner.engine.measured` reads them).
"""

from __future__ import annotations

from tuner.providers.sim.workloads import PRICE_GB_S, PRICE_REQUEST


class MeasuredSizes:
    """Invocations and total duration per function and memory size."""

    def __init__(self, functions: int):
        self._sizes: list[dict[int, tuple[int, float]]] = [{} for _ in range(functions)]
        self._failed: list[set[int]] = [set() for _ in range(functions)]

    def add(self, i: int, memory_mb: int, invocations: int, mean_ms: float, failed: bool) -> None:
        """Count a window of function ``i`` at ``memory_mb``: its invocations and mean duration."""
        if failed:
            self._failed[i].add(memory_mb)
            self._sizes[i].pop(memory_mb, None)
            return
        if not invocations or memory_mb in self._failed[i]:
            return
        count, total = self._sizes[i].get(memory_mb, (0, 0.0))
        self._sizes[i][memory_mb] = (count + invocations, total + invocations * mean_ms)

    def forget(self, i: int) -> None:
        """A new version went live: what the old one cost says nothing of it."""
        self._sizes[i].clear()
        self._failed[i].clear()

    def extra(self, i: int, memory_mb: int) -> dict[str, float]:
        """The facts of function ``i`` at today's ``memory_mb``: the cheapest size and its neighbours."""
        sizes = self._sizes[i]
        if not sizes:
            return {}
        cost = {m: _per_invocation(m, total / count) for m, (count, total) in sizes.items()}
        cheapest = min(cost, key=lambda m: cost[m])
        out = {"cheapest_measured_memory_mb": float(cheapest)}
        if memory_mb in cost:
            out["cheapest_measured_cost_ratio"] = cost[cheapest] / cost[memory_mb]
        below = [m for m in cost if m < cheapest]
        above = [m for m in cost if m > cheapest]
        if below:
            out["measured_below_mb"] = float(max(below))
        if above:
            out["measured_above_mb"] = float(min(above))
        return out


def _per_invocation(memory_mb: int, mean_ms: float) -> float:
    return PRICE_REQUEST + PRICE_GB_S * memory_mb / 1024.0 * mean_ms / 1000.0
