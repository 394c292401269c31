"""Repeated decisions: a decision the loop makes again, cycle after cycle, is recorded once.

A change held back by the guard's cap, a recommendation nobody has taken up yet, a
notification whose condition still holds: the loop makes the same decision for the same
function in every cycle until something changes.  Recording each as a new row, with its
facts, made the store the bottleneck of a large fleet and its file grow with every cycle.

:class:`Repeats` remembers, per function, rule and action, what the previous cycle
recorded: the record's id, how many cycles it has been seen, and what it says (verdict,
state, hold, mode, severity and change).  A decision this cycle that says the same as
the previous cycle's is not written again: its record counts one more cycle (``seen``)
and moves its ``last_seen`` to now, so history shows when it started and that it is still
going.  Anything different (another hold, another change, a gap of a cycle) is a new
record.  The memory is bounded by one cycle's decisions; the store keeps one
(:class:`tuner.store.audit.SqliteStore`) and rebuilds it after a restart from the records whose
run may go on.  Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tuner.domain.decisions import Decision
from tuner.domain.holds import Hold
from tuner.domain.lifecycle import State, Verdict
from tuner.domain.model import Knob, Mode, Severity, new_id

REPEATABLE: frozenset[State] = frozenset(
    {State.OBSERVED, State.SKIPPED, State.RECOMMENDED, State.NOTIFIED}
)
"""States of a decision that may be made again unchanged (nothing was applied)."""

_Key = tuple[str, str, str]
_Says = tuple[
    Verdict | None, State, Hold | None, Mode, Severity, tuple[Knob, float | None, float] | None
]


def _key(d: Decision) -> _Key:
    return d.ref.key, d.rule, d.action


def _says(d: Decision) -> _Says:
    """What a decision says: the same function, rule and action saying this is a repeat."""
    c = d.change
    change = (c.knob, c.before, c.after) if c is not None else None
    return d.verdict, d.state, d.hold, d.mode, d.severity, change


def _new_record(d: Decision, last: tuple[str, int, _Says] | None) -> Decision:
    """``d`` as the first cycle of a record of its own, never under a previous record's id.

    A decision planned as the next count of a record (:class:`tuner.decisions.planning.HeldPlans`)
    that says something else this time is a new record: a new id, seen once.
    """
    if d.seen == 1 and d.last_seen is None and (last is None or d.id != last[0]):
        return d
    return d.replaced(id=new_id(), seen=1, last_seen=None)


@dataclass(frozen=True, slots=True)
class Split:
    """A cycle's decisions, sorted into new records and repeats of the previous cycle's."""

    decisions: list[Decision]
    """All of them in their order; a repeat carries its record's id, ``seen`` and ``last_seen``."""
    new: list[Decision]
    seen_again: list[Decision]
    at: float
    memory: dict[_Key, tuple[str, int, _Says]] = field(repr=False)


class Repeats:
    """What the previous cycle recorded, to record a decision made again only once."""

    def __init__(self, recorded: Iterable[Decision] = (), at: float | None = None):
        """Start empty, or from the decisions a cycle at ``at`` recorded (after a restart)."""
        self._at = at
        self._memory: dict[_Key, tuple[str, int, _Says]] = {
            _key(d): (d.id, d.seen, _says(d)) for d in recorded if d.state in REPEATABLE
        }
        self._keys = {entry[0]: key for key, entry in self._memory.items()}

    def __len__(self) -> int:
        """How many records the previous cycle left (bounded by one cycle's decisions)."""
        return len(self._memory)

    def split(self, decisions: Sequence[Decision], now: float, max_gap_s: float) -> Split:
        """Sort a cycle's decisions into new ones and repeats of the previous cycle's.

        A previous cycle more than ``max_gap_s`` ago does not count: after such a gap
        (a daemon stopped for a while) every decision is a new record.
        """
        previous = self._memory if self._at is not None and now - self._at <= max_gap_s else {}
        out: list[Decision] = []
        new: list[Decision] = []
        again: list[Decision] = []
        memory: dict[_Key, tuple[str, int, _Says]] = {}
        for d in decisions:
            key = _key(d)
            last = previous.get(key)
            if d.state not in REPEATABLE:
                d = _new_record(d, last)
                new.append(d)
                out.append(d)
                continue
            says = _says(d)
            if last is not None and last[2] == says and key not in memory:
                if d.id != last[0] or d.seen != last[1] + 1 or d.last_seen != now:
                    d = d.replaced(id=last[0], seen=last[1] + 1, last_seen=now)
                again.append(d)  # a held change planned again comes counted already
            else:
                d = _new_record(d, last)
                new.append(d)
            memory[key] = (d.id, d.seen, says)
            out.append(d)
        return Split(out, new, again, now, memory)

    def recorded(self, split: Split) -> None:
        """The split's records were written: the next cycle compares with them."""
        self._at, self._memory = split.at, split.memory
        self._keys = {entry[0]: key for key, entry in self._memory.items()}

    def drop(self, ids: Iterable[str]) -> None:
        """These records were written otherwise (approved, say): they are no longer repeats."""
        for id_ in ids:
            key = self._keys.pop(id_, None)
            if key is not None:
                del self._memory[key]
