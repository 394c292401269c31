"""Where tuner's cost goes on one fleet: the functions furthest over their optimum, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def explain(sim: Any, db: Path, count: int) -> list[str]:
    """Lines on the ``count`` functions whose settled cost is furthest over their optimum.

    Each gives its workload and family, its memory against its need and optimum, the
    points of the fleet's cost ratio it adds, and the last memory decision tuner applied.
    """
    from tuner.domain.lifecycle import State
    from tuner.domain.model import FunctionRef
    from tuner.store.audit import SqliteStore

    provider = sim.provider
    costs = provider.ledger.costs()
    optimum = sum(o for _, o in costs) or 1.0
    worst = sorted(range(len(costs)), key=lambda i: costs[i][1] - costs[i][0])[:count]
    end = sim.days * 86_400.0
    store = SqliteStore(db)
    lines = []
    try:
        for i in worst:
            w, (cost, best) = provider.workloads[i].version_at(end), costs[i]
            ref = FunctionRef(provider.name, w.name)
            memory = provider.read(ref).memory_mb
            lines.append(
                f"  {w.name} {w.kind:8} {w.family:10} {memory:5d} MB, needs {w.need_mb:5.0f}, "
                f"optimum {w.optimum_mb():5d}; +{100 * (cost - best) / optimum:.2f} points "
                f"(cpu {w.cpu_ms:.0f} ms, io {w.io_ms:.0f} ms, timeout {w.timeout_s:g} s)"
            )
            changes = [
                d
                for d in store.decisions(ref=ref)
                if d.state in (State.APPLIED, State.IMPROVED, State.UNCHANGED)
                and d.change is not None
            ]
            lines.append(f"    {changes[-1].summary if changes else 'never changed'}")
    finally:
        store.close()
    return lines
