"""The life of a decision: the guard's verdict, the states, and every legal transition.

A decision is planned, then the guard gives its verdict (apply, recommend, observe, notify
or skip).  Only an ``apply`` verdict leads on: the change is written down (applying), goes
live (applied) or not (failed, superseded), and a change that went live is judged by later
windows (improved, partial, unchanged, worse) or rolled back.  A temporary change (tracing
switched on for a while) is not a fix and is not judged: it expires when its time or its
count of invocations runs out (or a person changes the setting it rode on).  :data:`TRANSITIONS` is the
one table of what may follow what; :func:`check` enforces it, and the store, messages,
``tuner explain`` and the operator's status all read these states.

Stdlib only: this is the innermost layer beside :mod:`tuner.domain.model`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Verdict(enum.StrEnum):
    """What the guard allows for a planned decision; given once and never changed."""

    APPLY = "apply"  # change the function
    RECOMMEND = "recommend"  # tell people the change, make none
    OBSERVE = "observe"  # record only
    NOTIFY = "notify"  # nothing to change: tell people
    SKIP = "skip"  # held back (cooldown, cap, hysteresis, no data); the reason says why


class State(enum.StrEnum):
    """Where a decision is in its life."""

    PLANNED = "planned"  # made by planning; with an apply verdict, about to be applied
    OBSERVED = "observed"  # recorded only
    RECOMMENDED = "recommended"  # people were told, nothing changed
    NOTIFIED = "notified"  # a notify-only decision: people were told
    SKIPPED = "skipped"  # held back by the guard (or a throttling provider)
    APPLYING = "applying"  # written down before the provider is called
    FAILED = "failed"  # the provider could not apply it, or a crash interrupted it
    SUPERSEDED = "superseded"  # made moot before it was applied: an outside change, a newer one
    APPLIED = "applied"  # live; a change waits for its verdict (a rollback stays here)
    IMPROVED = "improved"  # later windows show the problem went away
    PARTIAL = "partial"  # kept, but the problem remains: the next step follows the cooldown
    UNCHANGED = "unchanged"  # later windows show no difference; kept
    WORSE = "worse"  # later windows are worse, but it was kept (a person changed it since)
    ROLLED_BACK = "rolled-back"  # it was undone because it made things worse or only cost more
    EXPIRED = "expired"  # a temporary change ran its course: the function went back by itself


class IllegalTransition(ValueError):
    """A decision was asked to move to a state that cannot follow its current one."""


VERDICT_STATES: Mapping[Verdict, State] = {
    Verdict.APPLY: State.PLANNED,
    Verdict.RECOMMEND: State.RECOMMENDED,
    Verdict.OBSERVE: State.OBSERVED,
    Verdict.NOTIFY: State.NOTIFIED,
    Verdict.SKIP: State.SKIPPED,
}
"""The state each verdict leads to from ``planned``.  ``apply`` leaves the decision planned:
nothing has happened yet; it becomes ``applying`` when its intent is written (or
``skipped`` when the provider is throttling changes)."""

JUDGED: frozenset[State] = frozenset({State.IMPROVED, State.PARTIAL, State.UNCHANGED, State.WORSE})
"""Verdicts of later windows on a change that stays."""

TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.PLANNED: frozenset(VERDICT_STATES.values()) - {State.PLANNED} | {State.APPLYING},
    State.APPLYING: frozenset({State.APPLIED, State.FAILED, State.SUPERSEDED}),
    State.APPLIED: JUDGED | {State.ROLLED_BACK, State.EXPIRED},
    State.OBSERVED: frozenset(),
    State.RECOMMENDED: frozenset({State.SUPERSEDED}),  # a newer recommendation for its knob
    State.NOTIFIED: frozenset(),
    State.SKIPPED: frozenset(),
    State.FAILED: frozenset(),
    State.SUPERSEDED: frozenset(),
    # a person may roll back a change that tuner judged and kept
    State.IMPROVED: frozenset({State.ROLLED_BACK}),
    State.PARTIAL: frozenset({State.ROLLED_BACK}),
    State.UNCHANGED: frozenset({State.ROLLED_BACK}),
    State.WORSE: frozenset({State.ROLLED_BACK}),
    State.ROLLED_BACK: frozenset(),
    State.EXPIRED: frozenset(),
}
"""Every legal transition: the states that may follow each state.  Empty: final."""

LIVE: frozenset[State] = frozenset(
    {State.APPLYING, State.APPLIED, State.ROLLED_BACK, State.EXPIRED} | JUDGED
)
"""States of a decision whose change is, was, or may be live (applying: a crash left it open)."""

UNTOLD: frozenset[State] = frozenset({State.PLANNED, State.OBSERVED, State.SKIPPED, State.APPLYING})
"""States only the store records: nothing to tell people (yet)."""

EVENTS: frozenset[State] = frozenset({State.APPLIED, State.FAILED, State.ROLLED_BACK})
"""States that report something tuner did: told once, never repeated or silenced."""


IN_WORDS: Mapping[State, str] = {
    State.PLANNED: "planned",
    State.OBSERVED: "observed only",
    State.RECOMMENDED: "recommended, not applied",
    State.NOTIFIED: "needs a person: nothing tuner can change",
    State.SKIPPED: "held back",
    State.APPLYING: "being applied",
    State.FAILED: "failed to apply",
    State.SUPERSEDED: "superseded: made moot by an outside change or a newer decision",
    State.APPLIED: "applied",
    State.IMPROVED: "applied, and it helped",
    State.PARTIAL: "applied, not enough yet: a next step follows",
    State.UNCHANGED: "applied, with no effect seen",
    State.WORSE: "applied, and it made things worse",
    State.ROLLED_BACK: "rolled back",
    State.EXPIRED: "applied for a while, then ended by itself",
}
"""Each state as messages, ``tuner explain`` and the dashboard say it."""


class IntentState(enum.StrEnum):
    """Where a change's intent is: written before the provider is called, settled after."""

    OPEN = "open"  # written; the provider may or may not have applied it (a crash in between)
    DONE = "done"  # the change went live
    FAILED = "failed"  # the provider could not apply it
    ABANDONED = "abandoned"  # given up: superseded, refused before it began, or a crash left it


INTENT_STATES: Mapping[State, IntentState] = {
    State.APPLIED: IntentState.DONE,
    State.FAILED: IntentState.FAILED,
}
"""The intent's state once its decision settles; any other settled state abandons it."""


def check(current: State, new: State) -> None:
    """Raise :class:`IllegalTransition` unless ``new`` may follow ``current``."""
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "nothing (final)"
        raise IllegalTransition(f"{current.value} -> {new.value}: {current.value} allows {allowed}")


def is_final(state: State) -> bool:
    """True when nothing can follow the state."""
    return not TRANSITIONS[state]
