"""The dashboard's HTML pages, rendered on the server from the same answers as ``/api``."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from tuner.domain.model import Knob
from tuner.domain.times import iso
from tuner.engine.explaining import shown
from tuner.web import api
from tuner.web.api import NotFound, Sources

MAX_TOPOLOGY_FUNCTIONS = 150
"""Beyond this many calling functions the topology is a table only: a drawing would be noise."""


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return "-"
        if isinstance(value, int) or value.is_integer():
            return str(int(value))
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


_SETTINGS = frozenset({k.value for k in Knob} | {"timeout_ms"})
"""Facts that are a function's settings: null means it has no such setting, not no data."""


def _fact(value: Any, name: str = "") -> str:
    if value is None:
        return "null (not applicable)" if name in _SETTINGS else "null (no data)"
    return _num(value) if isinstance(value, int | float) else shown(value)


def _clock(t: float | None) -> str:
    return iso(t) if t else ""


def environment() -> Environment:
    """The template environment (autoescaping on, the package's templates)."""
    env = Environment(
        loader=PackageLoader("tuner.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, fact=_fact, clock=_clock)
    return env


class Pages:
    """Renders each page of the dashboard."""

    def __init__(self, src: Sources, poll_ms: int = 3000, actions: bool = False):
        self.src = src
        self.poll_ms = poll_ms
        self.actions = actions
        """Show the pause, resume, approve and roll-back buttons (a token is configured)."""
        self.env = environment()

    def _render(self, name: str, **context: Any) -> str:
        context.setdefault("function", None)
        return self.env.get_template(name).render(
            status=api.status_json(self.src), poll_ms=self.poll_ms, actions=self.actions, **context
        )

    def fleet(self, q: str = "", state: str = "", provider: str = "", page: int = 1) -> str:
        """The fleet table, its first page rendered on the server."""
        fleet = self.src.fleet.query(q, state, provider, page)
        return self._render(
            "fleet.html", page="fleet", fleet=fleet, q=q, state=state, provider=provider
        )

    def function(self, key: str) -> str:
        """One function: charts, decisions, messages, facts."""
        fn = api.function_json(self.src, key)
        return self._render("function.html", page="function", fn=fn, function=fn["key"])

    def rules(self, function: str | None) -> str:
        """Every rule; with a function, each clause's value and why the rule fired or not."""
        rules = api.rules_json(self.src)
        why, error = None, None
        if function:
            try:
                why = api.why_json(self.src, function)
            except NotFound as exc:
                error = str(exc)
        if why is not None:
            by_rule = {w["rule"]: w for w in why["rules"]}
            for r in rules:
                r["why"] = by_rule.get(r["name"])
        keys = [v.key for v in self.src.state.functions()[:2000]]
        return self._render(
            "rules.html",
            page="rules",
            rules=rules,
            why=why,
            error=error,
            function=why["function"] if why else function,
            keys=keys,
        )

    def topology(self, function: str | None) -> str:
        """Functions and their dependencies, drawn when the graph is small enough."""
        topo = api.topology_json(self.src, function or None)
        svg = _svg(topo) if 0 < len(topo["functions"]) <= MAX_TOPOLOGY_FUNCTIONS else None
        return self._render("topology.html", page="topology", topo=topo, svg=svg, function=function)

    def error(self, code: int, message: str) -> str:
        """An error page."""
        return self._render("error.html", page="error", code=code, message=message)


def _svg(topo: dict[str, Any]) -> Markup:
    """A two-column drawing: functions on the left, their dependencies on the right."""
    functions = topo["functions"]
    deps = topo["dependencies"]
    row, width = 26, 760
    height = max(len(functions), len(deps), 1) * row + 20
    fy = {f["key"]: 20 + i * row for i, f in enumerate(functions)}
    dy = {d["name"]: 20 + i * row for i, d in enumerate(deps)}
    parts = [
        f'<svg class="topology" role="img" aria-label="topology" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for e in topo["edges"]:
        if e["from"] not in fy or e["to"] not in dy:
            continue
        rate = e.get("error_rate")
        failing = isinstance(rate, float) and rate >= 0.5
        colour = "#c0392b" if failing else "#9aa5b1"
        parts.append(
            f'<line x1="230" y1="{fy[e["from"]]}" x2="520" y2="{dy[e["to"]]}" '
            f'stroke="{colour}" stroke-width="{3 if failing else 1.5}"/>'
        )
    for f in functions:
        y = fy[f["key"]]
        parts.append(
            f'<circle cx="230" cy="{y}" r="5" fill="#2e86de"/><a href="/functions/'
            f'{escape(f["key"])}"><text x="220" y="{y + 4}" text-anchor="end">'
            f"{escape(f['name'])}</text></a>"
        )
    for d in deps:
        y = dy[d["name"]]
        fill = "#c0392b" if d["failing"] else "#16a085"
        parts.append(
            f'<rect x="515" y="{y - 5}" width="10" height="10" fill="{fill}"/>'
            f'<text x="535" y="{y + 4}">{escape(d["name"])} ({d["callers"]} callers'
            f"{', failing for ' + str(d['failing']) if d['failing'] else ''})</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
