"""What a successful invocation cost at each size a function ran at, as its provider measures it.

For each function, since its version went live: the invocations at each memory size, of
the function's own size and of sizes tried on a share of its traffic, their billed time
(an invocation stopped at the timeout billed up to it) and how many succeeded.  A size
at which an invocation ran out of memory is left out: it does not meet the need, whatever
it costs.  The facts name the cheapest size per successful invocation and its nearest
neighbours (:mod:`tuner.engine.measured` reads them).
"""

from __future__ import annotations

from tuner.providers.sim.workloads import PRICE_GB_S, PRICE_REQUEST


class MeasuredSizes:
    """Invocations and total duration per function and memory size."""

    def __init__(self, functions: int):
        self._sizes: list[dict[int, tuple[int, int, float]]] = [{} for _ in range(functions)]
        """Per function and size: invocations, successes, billed milliseconds."""
        self._failed: list[set[int]] = [set() for _ in range(functions)]

    def add(
        self,
        i: int,
        memory_mb: int,
        invocations: int,
        mean_ms: float,
        ooms: int,
        timeouts: int,
        timeout_ms: float,
    ) -> None:
        """Count a window of function ``i`` at ``memory_mb``."""
        if ooms:
            self._failed[i].add(memory_mb)
            self._sizes[i].pop(memory_mb, None)
            return
        if not invocations or memory_mb in self._failed[i]:
            return
        count, ok, billed = self._sizes[i].get(memory_mb, (0, 0, 0.0))
        billed += invocations * mean_ms + timeouts * max(0.0, timeout_ms - mean_ms)
        self._sizes[i][memory_mb] = (count + invocations, ok + invocations - timeouts, billed)

    def forget(self, i: int) -> None:
        """A new version went live: what the old one cost says nothing of it."""
        self._sizes[i].clear()
        self._failed[i].clear()

    def extra(self, i: int, memory_mb: int) -> dict[str, float]:
        """Function ``i``'s facts at today's ``memory_mb``: the cheapest size and its neighbours."""
        sizes = self._sizes[i]
        if not sizes:
            return {}
        cost = {m: _per_success(m, *counts) for m, counts in sizes.items() if counts[1]}
        if not cost:
            return {}
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


def _per_success(memory_mb: int, invocations: int, successes: int, billed_ms: float) -> float:
    paid = invocations * PRICE_REQUEST + PRICE_GB_S * memory_mb / 1024.0 * billed_ms / 1000.0
    return paid / successes
