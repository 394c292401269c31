"""Views: alerts and sections turned into the plain, readable values templates show."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tuner.decisions.planning import DEPENDENCY_GROUP
from tuner.domain.lifecycle import IN_WORDS, State
from tuner.notify.alerts import Alert
from tuner.notify.facts import fact_lines
from tuner.notify.grouping import Section
from tuner.notify.proposals import propose

MAX_ALERTS_PER_SECTION = 10
MAX_ALERTS_PER_DIGEST_SECTION = 3
MAX_SECTIONS = 20

_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Link:
    """Evidence a person can open: a URL, or a path on the machine tuner runs on."""

    label: str
    target: str

    @property
    def is_url(self) -> bool:
        """True for http(s) links."""
        return self.target.startswith(("http://", "https://"))


@dataclass(frozen=True)
class AlertView:
    """One alert as templates show it."""

    alert: Alert
    new: bool
    stale: bool = False
    """Still open, but not reported for a while: no data since the alert's time."""

    def __getattr__(self, name: str) -> Any:
        # templates read the alert's own fields (ref, rule, severity ...) directly
        return getattr(self.alert, name)

    @property
    def no_data_since(self) -> str:
        """When the alert was last reported, for one that has had no data since."""
        return format_time(self.alert.time)

    @property
    def state_text(self) -> str:
        """The decision's state in words, e.g. ``recommended, not applied``."""
        return IN_WORDS[State(self.alert.state)]

    @property
    def change_text(self) -> str:
        """``memory_mb 128 -> 384``, or empty when nothing is to change."""
        change = self.alert.change
        return change.describe() if change else ""

    @property
    def headline(self) -> str:
        """One line: the change and its state, else the summary, else the rule."""
        if self.change_text:
            return f"{self.state_text}: {self.change_text} ({self.alert.rule})"
        return self.alert.summary or f"{self.alert.rule} ({self.state_text})"

    @property
    def facts_shown(self) -> list[tuple[str, str]]:
        """The measured facts worth showing, formatted with units."""
        return fact_lines(self.alert.facts)

    @property
    def window(self) -> str:
        """The observed window, e.g. ``5 min window ending 2026-11-27 20:15 UTC``."""
        end = format_time(self.alert.time)
        seconds = self.alert.facts.get("window_s")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0:
            return f"{format_span(float(seconds))} window ending {end}"
        return f"window ending {end}"

    @property
    def links(self) -> list[Link]:
        """Evidence named in the facts: ``console_url``, trace and flame-graph paths."""
        return evidence_links(self.alert.facts)


@dataclass(frozen=True)
class SectionView:
    """One group's part of a message."""

    key: str
    firing: list[AlertView]
    resolved: list[AlertView]
    hidden: int
    silenced: int
    repeat: bool

    @property
    def label(self) -> str:
        """The group key in words: ``dependency payments-api``, ``function aws:...``."""
        kind, sep, name = self.key.partition(":")
        return f"{kind} {name}" if sep and kind in ("dependency", "function") else self.key


@dataclass(frozen=True)
class NoticeView:
    """Everything one message tells: its sections and the proposals across them."""

    kind: str
    channel: str
    sections: list[SectionView]
    hidden_sections: int
    proposals: list[str]
    time: str
    severity: str
    firing_count: int
    resolved_count: int
    functions: int

    @property
    def compact(self) -> bool:
        """True for a digest of many groups: one line per alert, no details."""
        return self.kind == "digest"

    @property
    def single(self) -> AlertView | None:
        """The one alert, when the message is about exactly one."""
        if len(self.sections) == 1 and self.firing_count == 1 and not self.resolved_count:
            return self.sections[0].firing[0]
        return None


def build_notice(kind: str, channel: str, sections: Sequence[Section], now: float) -> NoticeView:
    """The view of one message about ``sections``."""
    firing = [a for s in sections for a in s.firing]
    resolved = [a for s in sections for a in s.resolved]
    shown = MAX_ALERTS_PER_DIGEST_SECTION if kind == "digest" else MAX_ALERTS_PER_SECTION
    ordered = sorted(sections, key=_section_order)
    views = [_section_view(s, shown) for s in ordered[:MAX_SECTIONS]]
    severities = [a.severity for a in firing] or ["info"]
    return NoticeView(
        kind=kind,
        channel=channel,
        sections=views,
        hidden_sections=max(0, len(sections) - MAX_SECTIONS),
        proposals=propose(firing),
        time=format_time(now),
        severity=max(severities, key=lambda s: _SEVERITY_RANK.get(s, 0)),
        firing_count=len(firing),
        resolved_count=len(resolved),
        functions=len({a.ref for a in firing} | {a.ref for a in resolved}),
    )


def _section_order(section: Section) -> tuple[bool, int, int]:
    """Dependencies first, then the most severe, then the largest groups."""
    worst = max((_SEVERITY_RANK.get(a.severity, 0) for a in section.firing), default=0)
    is_dependency = section.key.startswith(DEPENDENCY_GROUP)
    return (not is_dependency, -worst, -len(section.firing))


def _section_view(section: Section, shown: int) -> SectionView:
    firing = sorted(
        section.firing,
        key=lambda a: (-_SEVERITY_RANK.get(a.severity, 0), a.key not in section.new, a.ref),
    )
    return SectionView(
        key=section.key,
        firing=[AlertView(a, a.key in section.new, a.key in section.stale) for a in firing[:shown]],
        resolved=[AlertView(a, False) for a in section.resolved[:shown]],
        hidden=max(0, len(section.firing) - shown) + max(0, len(section.resolved) - shown),
        silenced=section.silenced,
        repeat=section.repeat,
    )


def format_time(seconds: float) -> str:
    """POSIX seconds as ``2026-11-27 20:15 UTC``."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_span(seconds: float) -> str:
    """A duration in words: ``45 s``, ``5 min``, ``2 h``."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def evidence_links(facts: Mapping[str, Any]) -> list[Link]:
    """Facts ending in ``_url`` or ``_path`` with a value, as links."""
    return [
        Link(name.rsplit("_", 1)[0].replace("_", " "), value)
        for name, value in sorted(facts.items())
        if name.endswith(("_url", "_path")) and isinstance(value, str) and value
    ]
