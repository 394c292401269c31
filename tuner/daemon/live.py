"""The loop's latest state, kept for readers: facts per function, recent history, decisions.

The daemon hands every :class:`CycleObserver` what it saw for each function and the report
of each cycle; :class:`LiveState` keeps the newest of it in memory for the dashboard, the
``/api`` answers, ``/readyz`` and the metrics.  Readers never touch the loop: the loop
writes, readers take consistent snapshots.

History is bounded: a ring of the last ``slots`` cycles, with a few chart facts per function
stored as 32-bit floats (about 3.5 KB per function at the default 96 cycles).
"""

from __future__ import annotations

import math
import threading
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from tuner.daemon.reports import CycleReport
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.model import Finding, Target

if TYPE_CHECKING:
    from tuner.engine import RuleBase

CHART_FACTS = (
    "memory_mb",
    "peak_memory_mb",
    "timeout_ms",
    "duration_p95_ms",
    "oom_rate",
    "timeout_rate",
    "error_rate",
    "dependency_latency_p95_ms",
    "invocations",
)
"""The facts kept per cycle for the charts of a function."""

DEFAULT_SLOTS = 96
_WIDTH = len(CHART_FACTS)
_NAN = math.nan
_CHART = itemgetter(*CHART_FACTS)


def _chart_values(facts: Mapping[str, Any]) -> Sequence[Any]:
    """The chart facts of one window, with NaN for no data."""
    try:
        values: tuple[Any, ...] = _CHART(facts)
    except KeyError:  # facts built without some names: each missing one is no data
        return [facts.get(name, _NAN) for name in CHART_FACTS]
    if None in values:
        return [_NAN if v is None else v for v in values]
    return values


class FunctionView(NamedTuple):
    """The newest facts about one function, as the last cycle that listed it saw them."""

    target: Target
    facts: Mapping[str, Any]
    findings: tuple[str, ...]
    """The rules that fired for it in that cycle."""
    observed_at: float

    @property
    def key(self) -> str:
        """The function's key, e.g. ``local:report-builder``."""
        return self.target.ref.key


@dataclass
class _Decisions:
    """The decisions that decide a function's state: its latest change and latest decision."""

    last: Decision | None = None
    change: Decision | None = None
    recent: list[Decision] = field(default_factory=list)


class LiveState:
    """The loop's latest state for readers: a :class:`CycleObserver` that remembers."""

    def __init__(self, interval_s: float, *, slots: int = DEFAULT_SLOTS, started: float = 0.0):
        self.interval_s = interval_s
        self.slots = max(2, slots)
        self.started = started
        self.cycles = 0
        self.version = 0
        """Grows whenever readers would see something new."""
        self.last_started: float | None = None
        self.last_finished: float | None = None
        self.last_errors: tuple[str, ...] = ()
        self.rules: RuleBase | None = None
        self._lock = threading.Lock()
        self._functions: dict[str, FunctionView] = {}
        self._next: dict[str, FunctionView] = {}
        self._decisions: dict[str, _Decisions] = {}
        self._times = array("d", [math.nan] * self.slots)
        self._series: dict[str, array[float]] = {}
        self._blank = array("f", [_NAN] * _WIDTH)
        self._counts: dict[str, int] = {}
        self._base = 0
        """Where this cycle's chart facts go in each function's ring."""
        self.per_provider: dict[str, int] = {}

    # ------------------------------------------------------------ writing (the loop)

    def function_observed(
        self, target: Target, facts: Mapping[str, Any], findings: Sequence[Finding], now: float
    ) -> None:
        """Remember a function's facts and write its chart facts into this cycle's slot."""
        ref = target.ref
        key = ref.key
        fired = tuple([f.rule for f in findings]) if findings else ()
        self._next[key] = FunctionView(target, facts, fired, now)
        counts = self._counts
        counts[ref.provider] = counts.get(ref.provider, 0) + 1
        row = self._series.get(key)
        if row is None:
            row = self._series[key] = array("f", self._blank * self.slots)
        base = self._base
        values = _chart_values(facts)
        try:
            row[base : base + _WIDTH] = array("f", values)
        except TypeError:  # not a number: the fact reference says floats, so this is no data
            row[base : base + _WIDTH] = array(
                "f", [v if v.__class__ is float else _NAN for v in values]
            )

    def cycle_finished(self, report: CycleReport, rules: RuleBase) -> None:
        """Publish this cycle's functions and decisions to readers, at once.

        An early cycle saw only some functions: the others stay as they were, and its chart
        facts are replaced by the next regular cycle's.
        """
        slot = self.cycles % self.slots
        fresh, counts = self._next, self._counts
        if report.early:
            with self._lock:
                self._functions = {**self._functions, **fresh}
                self._add([*report.decisions, *report.verified])
                self.version += 1
            self._next, self._counts = {}, {}
            return
        failed = {e.split(":", 1)[0] for e in report.errors} - set(counts)
        with self._lock:
            kept = {
                k: v
                for k, v in self._functions.items()
                if k not in fresh and v.target.ref.provider in failed
            }
            for v in kept.values():  # the provider failed this cycle: its functions stay listed
                counts[v.target.ref.provider] = counts.get(v.target.ref.provider, 0) + 1
            self._functions = {**kept, **fresh} if kept else fresh
            gap = slice(slot * _WIDTH, (slot + 1) * _WIDTH)
            for key in [k for k in self._series if k not in fresh]:
                if key in kept:
                    self._series[key][gap] = self._blank  # listed before, not seen this cycle
                else:
                    del self._series[key]
            self._times[slot] = report.started
            self.per_provider = counts
            self.cycles += 1
            self._base = (self.cycles % self.slots) * _WIDTH
            self.last_started, self.last_finished = report.started, report.finished
            self.last_errors = tuple(report.errors)
            self.rules = rules
            self._add([*report.decisions, *report.verified])
            self.version += 1
        self._next, self._counts = {}, {}

    def add_decisions(self, decisions: Iterable[Decision]) -> None:
        """Take decisions into each function's latest (also to seed from the store at start)."""
        with self._lock:
            self._add(decisions)
            self.version += 1

    def _add(self, decisions: Iterable[Decision]) -> None:
        for d in decisions:
            entry = self._decisions.setdefault(d.ref.key, _Decisions())
            if entry.last is None or d.time >= entry.last.time or d.id == entry.last.id:
                entry.last = d
            takes = d.change is not None and d.state not in (State.OBSERVED, State.SKIPPED)
            if takes and (
                entry.change is None or d.time >= entry.change.time or d.id == entry.change.id
            ):
                entry.change = d
            entry.recent = [x for x in entry.recent if x.id != d.id][-19:] + [d]

    def set_rules(self, rules: RuleBase) -> None:
        """The rule base in force (before the first cycle too)."""
        self.rules = rules

    # ------------------------------------------------------------ reading

    def functions(self) -> list[FunctionView]:
        """Every function of the last cycle, in key order."""
        with self._lock:
            views = list(self._functions.values())
        return sorted(views, key=lambda v: v.key)

    def function(self, key: str) -> FunctionView | None:
        """One function by key, or by its bare name when that is unambiguous."""
        with self._lock:
            view = self._functions.get(key)
            if view is not None:
                return view
            named = [v for v in self._functions.values() if v.target.ref.name == key]
        return named[0] if len(named) == 1 else None

    def decisions_of(self, key: str) -> tuple[Decision | None, Decision | None, list[Decision]]:
        """A function's latest decision, latest change, and recent decisions."""
        with self._lock:
            entry = self._decisions.get(key)
            if entry is None:
                return None, None, []
            return entry.last, entry.change, list(entry.recent)

    def history(self, key: str) -> dict[str, list[float | None]]:
        """The chart facts of a function over the kept cycles, oldest first (None: no data)."""
        with self._lock:
            row = self._series.get(key)
            times = list(self._times)
            n = self.cycles
        order = [(n + i) % self.slots for i in range(self.slots)]
        order = [s for s in order if not math.isnan(times[s])]
        out: dict[str, list[float | None]] = {"time": [times[s] for s in order]}
        for i, name in enumerate(CHART_FACTS):
            values: list[float | None] = []
            for s in order:
                v = row[s * _WIDTH + i] if row is not None else math.nan
                values.append(None if math.isnan(v) else round(float(v), 6))
            out[name] = values
        return out

    def ready(self, now: float) -> tuple[bool, str]:
        """Ready when rules are loaded and a cycle finished within the last three intervals."""
        if self.rules is None:
            return False, "no rules loaded yet"
        if self.last_finished is None:
            return False, "no cycle has finished yet"
        age = now - self.last_finished
        if age > 3 * self.interval_s:
            return (
                False,
                f"the last cycle finished {age:.0f} s ago (interval {self.interval_s:g} s)",
            )
        return True, f"ready, {len(self.rules.rules)} rules, the last cycle {age:.1f} s ago"
