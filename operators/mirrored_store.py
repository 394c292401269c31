"""A store that keeps the local SQLite audit log and writes what guards safety to the cluster.

:class:`MirroredStore` implements :class:`tuner.domain.ports.Store` by delegating every call to
the replica's own store, and mirrors each change tuner makes into the TuningPolicy's
status through a :class:`~operators.cluster_state.ClusterStateMirror`:

- ``begin_intent`` writes the open intent to the cluster **before** the workload is
  changed; when that write fails (or this replica no longer leads) it raises, and the
  change is not made;
- ``finish_intent`` and ``record`` of a tracked decision (its state as it is applied,
  judged window by window, settled or rolled back) update the entry afterwards; a
  failed update is retried with the next write;
- :meth:`MirroredStore.restore` imports the cluster's entries into the local store
  through the same Store methods, so the loop's cooldowns (``applied_since``), pending
  verifications (``pending_verification``) and open intents (``open_intents``, settled
  by ``Daemon.reconcile``) cover changes another replica made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from operators.cluster_state import ClusterStateMirror, MirroredChange
from tuner.domain.decisions import Decision, Intent, Kind
from tuner.domain.errors import ProviderError
from tuner.domain.lifecycle import IntentState, State
from tuner.domain.model import FunctionRef
from tuner.domain.ports import CycleRecord, Store
from tuner.domain.times import DAY_S

log = structlog.get_logger(__name__)


class NotLeaderError(ProviderError):
    """This replica does not hold the Lease, so it must not begin a change."""


class MirroredStore:
    """Implements :class:`tuner.domain.ports.Store` over an inner store, mirroring changes."""

    def __init__(
        self,
        inner: Store,
        mirror: ClusterStateMirror,
        *,
        may_write: Callable[[], bool] = lambda: True,
        keep_s: float = 8 * DAY_S,
        max_entries: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Mirror ``inner``'s changes through ``mirror`` while ``may_write()`` (leading).

        Settled changes older than ``keep_s`` leave the cluster; at most ``max_entries``
        stay (the oldest settled ones go first), so the status stays small.
        """
        self.inner = inner
        self.mirror = mirror
        self._may_write = may_write
        self._keep_s = keep_s
        self._max_entries = max_entries
        self._clock = clock
        self._tracked: set[str] = set()
        """Decision ids of the changes held in the cluster."""
        self._intents: dict[str, Intent] = {}
        """The intent of each tracked decision, with its latest state."""
        self._unsynced: set[str] = set()
        """Tracked ids whose last write failed: written again with the next one."""

    def __getattr__(self, name: str) -> Any:
        """Anything beyond the Store protocol (``close``, ``record_many``) is the inner store's."""
        return getattr(self.inner, name)

    # ---------------------------------------------------------------- mirrored writes

    def begin_intent(self, intent: Intent, decision: Decision) -> None:
        """Write the intent locally and to the cluster; raise when the cluster write fails."""
        if not self._may_write():
            raise NotLeaderError(f"{decision.ref}: not the leader, the change is not begun")
        self.inner.begin_intent(intent, decision)
        self._tracked.add(decision.id)
        self._intents[decision.id] = intent
        try:
            self._push([decision.id], strict=True)
        except ProviderError as exc:
            self._forget(decision.id)  # the applier settles the decision; the store only raises
            raise ProviderError(f"the cluster did not record the intent ({exc})") from exc

    def finish_intent(self, intent_id: str, state: IntentState, decision: Decision) -> None:
        """Settle the intent locally, then in the cluster."""
        self.inner.finish_intent(intent_id, state, decision)
        intent = self._intents.get(decision.id)
        if intent is not None:
            self._intents[decision.id] = _with_state(intent, state)
        self._push([decision.id])

    def record(self, decision: Decision) -> None:
        """Write the decision locally, then its entry in the cluster when it has one."""
        self.record_many([decision])

    def record_many(self, decisions: list[Decision]) -> None:
        """Write decisions locally in one transaction, then their entries in the cluster."""
        self.inner.record_many(decisions)
        self._push([d.id for d in decisions])

    def record_cycle(self, record: CycleRecord) -> list[Decision]:
        """Write a cycle's record locally in one transaction, then its changes' entries."""
        recorded = self.inner.record_cycle(record)
        self._push([d.id for d in record.writes])
        return recorded

    def put_state(self, key: str, value: str) -> None:
        """Store loop state (local only)."""
        self.inner.put_state(key, value)

    def delete_state(self, key: str) -> None:
        """Forget loop state (local only)."""
        self.inner.delete_state(key)

    # ---------------------------------------------------------------- plain reads

    def decisions(
        self, ref: FunctionRef | None = None, since: float | None = None, limit: int = 1000
    ) -> list[Decision]:
        """Decisions of the inner store."""
        return self.inner.decisions(ref, since, limit)

    def get(self, decision_id: str) -> Decision | None:
        """One decision of the inner store."""
        return self.inner.get(decision_id)

    def applied_since(self, since: float, *, with_facts: bool = True) -> list[Decision]:
        """Applied decisions of the inner store (imported ones included)."""
        return self.inner.applied_since(since, with_facts=with_facts)

    def pending_verification(self) -> list[Decision]:
        """Changes not judged yet (imported ones included)."""
        return self.inner.pending_verification()

    def unsettled_rollbacks(self) -> list[Decision]:
        """Rollbacks whose reversed change is not marked rolled back yet."""
        return self.inner.unsettled_rollbacks()

    def prune(self, before: float) -> int:
        """Prune the inner store (the cluster's entries are pruned as they are written)."""
        return self.inner.prune(before)

    def open_intents(self) -> list[Intent]:
        """Intents begun and not finished (imported ones included)."""
        return self.inner.open_intents()

    def get_state(self, key: str) -> str | None:
        """Loop state of the inner store."""
        return self.inner.get_state(key)

    # ---------------------------------------------------------------- taking over

    def restore(self) -> int:
        """Import the cluster's changes into the local store; return how many there were.

        An entry the local store knows settled while the cluster still shows it open (the
        cluster write after the change failed) is written back from the local store.
        Raises :class:`ProviderError` when the cluster cannot be read.
        """
        records = self.mirror.read()
        open_here = {i.id for i in self.inner.open_intents()}
        for key, record in records.items():
            self._import(record, open_here)
            self._tracked.add(key)
        log.info(
            "cluster_state_restored",
            policy=self.mirror.policy,
            changes=len(records),
            open=sum(
                1 for r in records.values() if r.intent and r.intent.state is IntentState.OPEN
            ),
            pending=sum(1 for r in records.values() if _pending(r.decision)),
        )
        return len(records)

    def _import(self, record: MirroredChange, open_here: set[str]) -> None:
        decision, intent = record.decision, record.intent
        local = self.inner.get(decision.id)
        if intent is not None:
            self._intents[decision.id] = intent
        if intent is not None and intent.state is IntentState.OPEN:
            if local is not None and local.state is not State.APPLYING:
                self._unsynced.add(decision.id)  # settled here; the cluster learns it next
                if decision.id in self._intents:
                    self._intents[decision.id] = _with_state(intent, IntentState.DONE)
            elif intent.id not in open_here:
                self.inner.begin_intent(intent, decision)
        elif _knows_more(local, decision):
            self._unsynced.add(decision.id)  # judged further here; the cluster learns it next
        else:
            self.inner.record(decision)
            if intent is not None and intent.id in open_here:
                self.inner.finish_intent(intent.id, intent.state, decision)

    # ---------------------------------------------------------------- writing

    def _push(self, ids: Iterable[str], *, strict: bool = False) -> None:
        wanted = {i for i in ids if i in self._tracked} | self._unsynced
        if not wanted or not self._may_write():
            self._unsynced |= wanted
            return
        writes: dict[str, MirroredChange | None] = {}
        for key in wanted:
            decision = self.inner.get(key)
            writes[key] = None if decision is None else self._record_of(decision)
        writes.update(dict.fromkeys(self._expired(set(writes)), None))
        try:
            self.mirror.write(writes)
        except ProviderError as exc:
            self._unsynced |= wanted
            if strict:
                raise
            log.warning("cluster_state_not_written", policy=self.mirror.policy, error=str(exc))
            return
        self._unsynced -= wanted
        for key, value in writes.items():
            if value is None:
                self._forget(key)

    def _forget(self, key: str) -> None:
        self._tracked.discard(key)
        self._intents.pop(key, None)
        self._unsynced.discard(key)

    def _record_of(self, decision: Decision) -> MirroredChange:
        return MirroredChange(decision, self._intents.get(decision.id))

    def _expired(self, writing: set[str]) -> list[str]:
        """Tracked changes to drop: settled and older than ``keep_s``, or beyond the cap."""
        now = self._clock()
        settled: list[tuple[float, str]] = []
        for key in self._tracked - writing:
            decision = self.inner.get(key)
            if decision is None:
                settled.append((float("-inf"), key))
            elif self._settled(decision):
                settled.append((decision.time, key))
        settled.sort()
        old = [key for when, key in settled if when < now - self._keep_s]
        excess = len(self._tracked) - len(old) - self._max_entries
        rest = [key for _, key in settled if key not in old]
        return old + rest[: max(0, excess)]

    def _settled(self, decision: Decision) -> bool:
        intent = self._intents.get(decision.id)
        return (
            decision.state is not State.APPLYING
            and not _pending(decision)
            and (intent is None or intent.state is not IntentState.OPEN)
        )


def _pending(decision: Decision) -> bool:
    """A change that went live and waits for its verdict (a rollback is never judged)."""
    return decision.state is State.APPLIED and decision.kind is not Kind.ROLLBACK


def _knows_more(local: Decision | None, cluster: Decision) -> bool:
    """True when the local store judged the same change over more windows than the cluster."""
    return (
        local is not None
        and local.state is cluster.state
        and local.judged_windows > cluster.judged_windows
    )


def _with_state(intent: Intent, state: IntentState) -> Intent:
    return Intent(intent.id, intent.decision_id, intent.ref, intent.changes, intent.created, state)
