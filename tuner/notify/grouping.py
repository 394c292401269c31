"""Grouping of alerts into messages over time, the way Alertmanager does it.

Pure logic on an injected ``now``: no clock, no I/O.  Each channel has its own groups.
A new group waits ``group_wait`` before its first message; news (new, changed or
resolved alerts) is told at most every ``group_interval``; alerts still firing are
repeated every ``repeat_interval``.  Alerts about something tuner did (applied, failed,
rolled back) are told once and then dropped.  While a dependency's group is firing,
the other alerts of the functions that depend on it are held back (inhibition).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tuner.decisions.planning import DEPENDENCY_GROUP
from tuner.notify.alerts import Alert
from tuner.notify.settings import GroupField, RoutingSettings

GroupId = tuple[str, str]
"""A group's channel and key."""


@dataclass
class Entry:
    """One alert in a group, with what has been told about it."""

    alert: Alert
    last_seen: float
    sent_fingerprint: str | None = None
    resolved_at: float | None = None
    stale: bool = False
    """No report for ``resolve_timeout``: still open (silence is no recovery), without data."""
    told_stale: bool = False

    @property
    def firing(self) -> bool:
        """True while the alert has not been resolved."""
        return self.resolved_at is None


@dataclass
class Group:
    """The alerts of one channel that are told together, and when they were last told."""

    channel: str
    key: str
    created_at: float
    entries: dict[str, Entry] = field(default_factory=dict)
    last_sent_at: float | None = None
    version: int = 0
    """Stamped on every persisted change, so an older snapshot never overwrites a newer one."""

    @property
    def id(self) -> GroupId:
        """The channel and the key."""
        return (self.channel, self.key)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "channel": self.channel,
            "key": self.key,
            "created_at": self.created_at,
            "last_sent_at": self.last_sent_at,
            "version": self.version,
            "entries": [
                {
                    "alert": e.alert.to_dict(),
                    "last_seen": e.last_seen,
                    "sent_fingerprint": e.sent_fingerprint,
                    "resolved_at": e.resolved_at,
                    "stale": e.stale,
                    "told_stale": e.told_stale,
                }
                for e in self.entries.values()
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Group:
        """Inverse of :meth:`to_dict`."""
        group = cls(
            data["channel"],
            data["key"],
            data["created_at"],
            {},
            data["last_sent_at"],
            data.get("version", 0),
        )
        for raw in data["entries"]:
            alert = Alert.from_dict(raw["alert"])
            group.entries[alert.key] = Entry(
                alert,
                raw["last_seen"],
                raw["sent_fingerprint"],
                raw["resolved_at"],
                raw["stale"],
                raw.get("told_stale", False),
            )
        return group


@dataclass(frozen=True)
class Changes:
    """Group changes to persist: new states and deletions, each with its version."""

    saved: list[tuple[str, str, int, str]]
    """(channel, key, version, state as JSON) per changed group."""
    deleted: list[tuple[str, str, int]]
    """(channel, key, version) per deleted group."""


@dataclass(frozen=True)
class Section:
    """What one group tells in one message."""

    channel: str
    key: str
    firing: tuple[Alert, ...]
    new: frozenset[str]
    """Keys of the firing alerts that are news (not told before in this form)."""
    resolved: tuple[Alert, ...] = ()
    stale: frozenset[str] = frozenset()
    """Keys of the firing alerts without data for ``resolve_timeout``: still open."""
    silenced: int = 0
    """How many alerts of dependent functions this (dependency) group holds back."""

    @property
    def repeat(self) -> bool:
        """True when nothing changed: the message is a reminder."""
        return not self.new and not self.resolved


def group_key(alert: Alert, group_by: Iterable[GroupField]) -> str:
    """The key of the group an alert belongs to under the ``group_by`` fields."""
    fields = list(group_by)
    if fields == ["group"]:
        return alert.group
    return ",".join(f"{name}={_field(alert, name)}" for name in fields)


def _field(alert: Alert, name: GroupField) -> str:
    if name == "group":
        return alert.group
    if name == "rule":
        return alert.rule
    if name == "function":
        return alert.ref
    if name == "provider":
        return alert.ref.partition(":")[0]
    if name == "severity":
        return alert.severity
    worst = alert.facts.get("worst_dependency")
    return alert.dependency or (worst if isinstance(worst, str) else "")


class Grouper:
    """Holds the groups of all channels and decides which of them are due to be told."""

    def __init__(self, routing: RoutingSettings, groups: Iterable[Group] = (), now: float = 0.0):
        """Start with persisted ``groups``; their alerts count as seen at ``now``."""
        self._routing = routing
        self._groups: dict[GroupId, Group] = {g.id: g for g in groups}
        for group in self._groups.values():
            for entry in group.entries.values():
                entry.last_seen = max(entry.last_seen, now)
        self._changed: set[GroupId] = set()
        self._deleted: set[GroupId] = set()
        self._version = max((g.version for g in self._groups.values()), default=0)

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, channel: str, alert: Alert, now: float) -> None:
        """Put an alert into its group on ``channel`` (a known alert is refreshed)."""
        key = group_key(alert, self._routing.group_by)
        group = self._groups.get((channel, key))
        if group is None:
            group = self._groups[(channel, key)] = Group(channel, key, now)
            self._deleted.discard(group.id)
        entry = group.entries.get(alert.key)
        if entry is None:
            group.entries[alert.key] = Entry(alert, now)
        elif entry.firing and entry.alert.fingerprint == alert.fingerprint and not entry.stale:
            entry.alert, entry.last_seen = alert, now
            return  # a mere refresh: not persisted (a restart refreshes every alert)
        else:
            entry.alert, entry.last_seen = alert, now
            entry.resolved_at, entry.stale = None, False  # data again after silence is news
        self._changed.add(group.id)

    def resolve(self, ref: str, rule: str, now: float) -> None:
        """Mark the firing alerts of ``rule`` for the function ``ref`` resolved."""
        for group in self._groups.values():
            for entry in group.entries.values():
                alert = entry.alert
                if alert.ref == ref and alert.rule == rule and entry.firing and not alert.event:
                    entry.resolved_at = now
                    self._changed.add(group.id)

    def take_due(self, now: float, include_waiting: bool = False) -> list[Section]:
        """The sections due now; with ``include_waiting`` also every section with news.

        The groups are updated as if the sections were told.  Groups that cannot be due
        yet are skipped without looking at their alerts, so a pass stays cheap.
        """
        candidates = [
            g for g in self._groups.values() if include_waiting or now >= self._earliest(g)
        ]
        if not candidates:
            return []
        inhibitors = self._inhibitors() if self._routing.inhibit else {}
        sections: list[Section] = []
        for group in candidates:
            self._expire(group, now)
            section = self._section(group, inhibitors)
            if section is not None and (
                self._due(group, section, now) or (include_waiting and not section.repeat)
            ):
                sections.append(section)
                self._mark_told(group, section, now)
            if not group.entries and now >= self._earliest(group):
                self._drop(group.id)  # a group just told waits out group_interval first
        if any(s.key.startswith(DEPENDENCY_GROUP) for s in sections):
            silenced = self._silenced(inhibitors)
            sections = [_with_silenced(s, silenced) for s in sections]
        return sections

    def _earliest(self, group: Group) -> float:
        """The earliest time the group may have something due."""
        r = self._routing
        if group.last_sent_at is None:
            return group.created_at + r.group_wait
        return group.last_sent_at + min(r.group_interval, r.repeat_interval)

    def drain_changes(self) -> Changes:
        """The changes since the last call, serialised now and stamped with a new version."""
        self._version += 1
        saved = []
        for gid in self._changed:
            group = self._groups[gid]
            group.version = self._version
            saved.append((group.channel, group.key, group.version, json.dumps(group.to_dict())))
        deleted = [(channel, key, self._version) for channel, key in self._deleted]
        self._changed.clear()
        self._deleted.clear()
        return Changes(saved, deleted)

    def _drop(self, gid: GroupId) -> None:
        del self._groups[gid]
        self._changed.discard(gid)
        self._deleted.add(gid)

    def _inhibitors(self) -> dict[str, set[str]]:
        """Per failing dependency, the functions its firing alerts are about."""
        found: dict[str, set[str]] = {}
        for group in self._groups.values():
            for entry in group.entries.values():
                dependency = entry.alert.dependency
                if dependency is not None and entry.firing:
                    found.setdefault(dependency, set()).add(entry.alert.ref)
        return found

    def _expire(self, group: Group, now: float) -> None:
        """Mark alerts without a report for ``resolve_timeout`` as without data (never resolved:
        only data showing health resolves); forget resolved ones nobody was told about."""
        timeout = self._routing.resolve_timeout
        for key, entry in list(group.entries.items()):
            quiet = entry.last_seen + timeout <= now
            if entry.firing and not entry.alert.event and quiet and not entry.stale:
                entry.stale = True
                self._changed.add(group.id)
            if not entry.firing and (
                entry.sent_fingerprint is None or not self._routing.send_resolved
            ):
                del group.entries[key]
                self._changed.add(group.id)

    def _silenced(self, inhibitors: Mapping[str, set[str]]) -> dict[str, set[str]]:
        """Per failing dependency, the keys of the alerts it holds back."""
        silenced: dict[str, set[str]] = {}
        for group in self._groups.values():
            for entry in group.entries.values():
                blocker = _inhibited_by(entry.alert, inhibitors) if entry.firing else None
                if blocker is not None:
                    silenced.setdefault(blocker, set()).add(entry.alert.key)
        return silenced

    def _section(self, group: Group, inhibitors: Mapping[str, set[str]]) -> Section | None:
        firing = [
            e.alert
            for e in group.entries.values()
            if e.firing and _inhibited_by(e.alert, inhibitors) is None
        ]
        resolved = [e for e in group.entries.values() if not e.firing]
        if not firing and not resolved:
            return None
        return Section(
            channel=group.channel,
            key=group.key,
            firing=tuple(firing),
            new=frozenset(
                a.key
                for a in firing
                if group.entries[a.key].sent_fingerprint != a.fingerprint
                or group.entries[a.key].stale is not group.entries[a.key].told_stale
            ),
            resolved=tuple(e.alert for e in resolved),
            stale=frozenset(a.key for a in firing if group.entries[a.key].stale),
        )

    def _due(self, group: Group, section: Section, now: float) -> bool:
        r = self._routing
        if group.last_sent_at is None:
            return now >= group.created_at + r.group_wait
        wait = r.repeat_interval if section.repeat else r.group_interval
        return now >= group.last_sent_at + wait

    def _mark_told(self, group: Group, section: Section, now: float) -> None:
        for alert in section.firing:
            entry = group.entries[alert.key]
            if alert.event:
                del group.entries[alert.key]
            else:
                entry.sent_fingerprint, entry.told_stale = alert.fingerprint, entry.stale
        for alert in section.resolved:
            del group.entries[alert.key]
        group.last_sent_at = now
        self._changed.add(group.id)


def _inhibited_by(alert: Alert, inhibitors: Mapping[str, set[str]]) -> str | None:
    """The failing dependency that holds this alert back, if any."""
    if alert.dependency is not None or alert.event:
        return None
    for dependency, refs in inhibitors.items():
        if alert.ref in refs or alert.depends_on(dependency):
            return dependency
    return None


def _with_silenced(section: Section, silenced: Mapping[str, set[str]]) -> Section:
    """The section with the count of alerts its dependency holds back, if it is one's."""
    if not section.key.startswith(DEPENDENCY_GROUP):
        return section
    dependency = section.key[len(DEPENDENCY_GROUP) :]
    return replace(section, silenced=len(silenced.get(dependency, ())))
