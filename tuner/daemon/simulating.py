"""Dry-run a rule base on a simulated fleet: what tuner would do, what it costs, how far from optimal.

:func:`simulate` runs tuner's real loop (:class:`tuner.daemon.loop.Daemon`) with a real store and
notifier against the ``sim`` provider on a virtual clock, cycle after cycle, and scores
the run against each function's true optimum.  ``tuner simulate`` is its command line.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.daemon.scheduling import Early, EarlyCycles
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.times import DAY_S

if TYPE_CHECKING:
    from tuner.providers.sim import SimProvider, VirtualClock

BUNDLED_RULES = Path(__file__).resolve().parents[2] / "rules"
EARLY_GAP_S = 60.0
"""The shortest gap between a cycle run early and the cycles around it, in simulations."""


@dataclass
class Simulation:
    """What tuner did on a simulated fleet, and how it scored."""

    functions: int
    days: float
    window_s: float
    cycles: int = 0
    early_cycles: int = 0
    """Cycles run early, for functions that began to fail inside a window."""
    cpu_s: float = 0.0
    decisions: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(rule, action, outcome) -> how many decisions."""
    examples: list[str] = field(default_factory=list)
    score: Any = None
    provider: Any = None
    """The simulated provider, with its fleet and ledger."""

    def as_json(self) -> dict[str, Any]:
        """The simulation as a JSON object."""
        return {
            "functions": self.functions,
            "days": self.days,
            "window_s": self.window_s,
            "cycles": self.cycles,
            "early_cycles": self.early_cycles,
            "cpu_s": round(self.cpu_s, 3),
            "decisions": [
                {"rule": r, "action": a, "outcome": o, "count": n}
                for (r, a, o), n in sorted(self.decisions.items())
            ],
            "examples": self.examples,
            "score": self.score.as_json() if self.score else None,
        }


def simulate(
    rule_paths: Sequence[str | Path],
    *,
    functions: int = 1000,
    days: float = 7.0,
    seed: int = 0,
    window_s: float = 900.0,
    store_dir: Path | None = None,
    on_cycle: Callable[[int], None] | None = None,
    guard_policy: Any = None,
    early_gap_s: float | None = EARLY_GAP_S,
) -> Simulation:
    """Run the rules on a fresh simulated fleet for ``days`` of virtual time.

    ``guard_policy`` (a :class:`tuner.decisions.guard.GuardPolicy`) replaces the default caps.
    Cycles run every ``window_s``, and early for functions that begin to fail, at most every
    ``early_gap_s`` (:class:`tuner.daemon.scheduling.EarlyCycles`; None: never early).
    """
    from tuner.daemon.loop import Daemon, DaemonSettings
    from tuner.decisions.guard import GuardPolicy
    from tuner.engine import load_rules
    from tuner.notify import build_notifier
    from tuner.providers.sim import Settings, VirtualClock, build
    from tuner.store.audit import SqliteStore

    rules = load_rules(list(rule_paths))
    clock = VirtualClock()
    provider = build(Settings(functions=functions, seed=seed), clock=clock)
    end = days * DAY_S
    provider.ledger.settle_from = max(window_s, end - DAY_S)
    result = Simulation(functions=functions, days=days, window_s=window_s)
    with tempfile.TemporaryDirectory() as tmp:
        base = store_dir or Path(tmp)
        store = SqliteStore(base / "tuner.db")
        notifier = build_notifier({"channels": {}}, base / "outbox.db", clock, stream=io.StringIO())
        daemon = Daemon(
            providers=[provider],
            rules=rules,
            store=store,
            notifier=notifier,
            clock=clock,
            settings=DaemonSettings(window_s=window_s, guard_policy=guard_policy or GuardPolicy()),
        )
        started = time.process_time()
        schedule = EarlyCycles(min_gap_s=early_gap_s) if early_gap_s else None
        try:
            for plan in virtual_cycles(provider, clock, window_s, end, schedule):
                report = daemon.run_cycle(only=plan.functions if plan else None)
                if report.early:
                    result.early_cycles += 1
                else:
                    result.cycles += 1
                _tally(result, report.decisions + report.verified)
                if on_cycle is not None and not report.early:
                    on_cycle(result.cycles)
        finally:
            result.cpu_s = time.process_time() - started
            store.close()
    result.score = provider.ledger.score()
    result.provider = provider
    return result


def virtual_cycles(
    provider: SimProvider,
    clock: VirtualClock,
    window_s: float,
    end: float,
    schedule: EarlyCycles | None,
) -> Iterator[Early | None]:
    """Move the virtual clock to each cycle up to ``end``: yield an early cycle, or None.

    Cycles come every ``window_s``, and early as ``schedule`` says.  The simulation knows
    when the next invocation will be killed for memory at today's sizes, so the clock
    jumps to the early cycle instead of polling for news.
    """
    if schedule is not None:
        schedule.ran(clock.now())  # the daemon starts: as if a cycle had just run
    regular = clock.now() + window_s
    while regular <= end + 1e-6:
        plan = None
        if schedule is not None:
            plan = schedule.due(provider.first_news(schedule.last, regular), regular)
        at = regular if plan is None else plan.at
        clock.advance(at - clock.now())
        yield plan
        if schedule is not None:
            schedule.ran(at, plan)
        if plan is None:
            regular += window_s


def _tally(result: Simulation, decisions: list[Decision]) -> None:
    for d in decisions:
        result.decisions[(d.rule, d.action, d.state.value)] += 1
        if d.state is State.APPLIED and d.rule == "oom" and len(result.examples) < 5:
            result.examples.append(f"{d.ref.name}: {d.summary}")
