"""The JSON answers under ``/api/``: fleet, function, decisions, rules, why, topology, status.

Every answer is read-only over the loop's latest state and the store, and shows no secret:
a function's configuration is shown knob by knob, never its environment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tuner.daemon.control import paused
from tuner.daemon.live import FunctionView, LiveState
from tuner.decisions.documents import decision_json
from tuner.domain.decisions import Decision
from tuner.domain.model import FunctionRef, Knob
from tuner.domain.naming import function_key
from tuner.domain.ports import Store
from tuner.engine.explaining import explain, plain
from tuner.engine.rulefiles import CompiledRule
from tuner.notify.outbox import Outbox
from tuner.web.fleet import Fleet

MAX_DECISIONS = 200


@dataclass
class Sources:
    """What the web layer reads: the latest state, the fleet rows, the store and the outbox."""

    state: LiveState
    store: Store | None = None
    db_path: Path | None = None
    """The store's SQLite file (its path says which daemon this is)."""
    outbox: Outbox | None = None
    """The notification outbox: the messages that told about each function."""
    streaks: Callable[[], Mapping[str, Mapping[str, int]]] = dict
    clock: Callable[[], float] = time.time
    fleet: Fleet = field(init=False)
    _topology: tuple[int, int, dict[str, Any]] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.fleet = Fleet(self.state, self.clock)


class NotFound(LookupError):
    """The asked-for function or rule does not exist."""


def dumps(value: Any) -> bytes:
    """Compact JSON bytes of an answer."""
    return json.dumps(plain(value), separators=(",", ":"), allow_nan=False).encode()


def status_json(src: Sources) -> dict[str, Any]:
    """The daemon's own state: cycles, readiness, rules, functions."""
    s = src.state
    now = src.clock()
    ready, why = s.ready(now)
    return {
        "ready": ready,
        "why": why,
        "cycles": s.cycles,
        "interval_s": s.interval_s,
        "last_cycle_started": s.last_started,
        "last_cycle_finished": s.last_finished,
        "errors": list(s.last_errors),
        "rules": len(s.rules.rules) if s.rules else 0,
        "functions": sum(s.per_provider.values()),
        "providers": s.per_provider,
        "now": now,
        "store": str(src.db_path.resolve()) if src.db_path else None,
    }


def _view(src: Sources, name: str) -> FunctionView:
    """A function of the last cycle by key or unique bare name; NotFound says what is known."""
    view = src.state.function(name)
    if view is not None:
        return view
    try:
        function_key(name, (v.key for v in src.state.functions()))  # says why it is not
    except LookupError as exc:
        raise NotFound(f"{exc} in the last cycle") from None
    raise NotFound(f"no function {name!r} in the last cycle")


def _config(view: FunctionView) -> dict[str, Any]:
    cfg = view.target.config
    return {k.value: cfg.get(k) for k in Knob}


def function_json(src: Sources, key: str) -> dict[str, Any]:
    """One function: facts, configuration, state, chart history with change markers, decisions."""
    view = _view(src, key)
    ref = view.target.ref
    row = next((r for r in src.fleet.rows() if r.key == view.key), None)
    decisions = _decisions(src, ref)
    markers = [
        {"time": d.time, "text": f"{d.rule}: {d.change.describe()}", "state": d.state.value}
        for d in decisions
        if d.change is not None and d.applied
    ]
    return {
        "key": view.key,
        "name": ref.name,
        "provider": ref.provider,
        "scope": ref.scope,
        "owner": view.target.owner,
        "labels": dict(view.target.labels),
        "state": row.state if row else None,
        "severity": row.severity if row else "",
        "findings": list(view.findings),
        "observed_at": view.observed_at,
        "config": _config(view),
        "facts": dict(view.facts),
        "history": src.state.history(view.key),
        "markers": markers,
        "decisions": [decision_json(d) for d in reversed(decisions)],
        "messages": messages(src, ref),
        "links": _links(view),
        "paused": paused(src.store, view.key) if src.store is not None else None,
    }


def _links(view: FunctionView) -> list[dict[str, str]]:
    key = view.key
    links = [
        {"title": "why each rule fired or not", "href": f"/rules?function={key}"},
        {"title": "topology", "href": f"/topology?function={key}"},
    ]
    if view.target.console_url:
        links.append({"title": "provider console", "href": view.target.console_url})
    return links


def _decisions(src: Sources, ref: FunctionRef) -> list[Decision]:
    if src.store is not None:
        return src.store.decisions(ref, limit=MAX_DECISIONS)
    return src.state.decisions_of(ref.key)[2]


def decisions_json(src: Sources, key: str | None, limit: int) -> list[dict[str, Any]]:
    """Recent decisions, newest first, for one function or all."""
    limit = max(1, min(limit, 5000))
    if src.store is None:
        return []
    ref = None
    if key:
        view = src.state.function(key)
        ref = view.target.ref if view is not None else FunctionRef.parse(key)
    return [decision_json(d) for d in reversed(src.store.decisions(ref, limit=limit))]


def messages(src: Sources, ref: FunctionRef, limit: int = 20) -> list[dict[str, Any]]:
    """The newest messages that told about a function, grouped ones included."""
    if src.outbox is None:
        return []
    return [asdict(m) for m in src.outbox.told_about(ref.key, limit)]


def rule_json(compiled: CompiledRule) -> dict[str, Any]:
    """A rule as the rules page lists it."""
    r = compiled.rule
    return {
        "name": r.name,
        "description": r.description,
        "when": r.when,
        "for": r.for_windows,
        "severity": r.severity.value,
        "mode": r.mode.value if r.mode else None,
        "cooldown_s": r.cooldown,
        "actions": [a.model_dump(mode="json") for a in r.actions],
        "match": r.match.model_dump(mode="json"),
        "source": f"{compiled.source}:{compiled.line}",
        "advice": r.advice,
    }


def rules_json(src: Sources) -> list[dict[str, Any]]:
    """Every rule in force."""
    rules = src.state.rules
    return [rule_json(r) for r in rules.rules] if rules else []


def why_json(src: Sources, key: str, rule: str | None = None) -> dict[str, Any]:
    """For one function: each rule, each clause with its current value, and why it fired or not."""
    view = _view(src, key)
    rules = src.state.rules
    if rules is None:
        raise NotFound("no rules are loaded yet")
    chosen = [r for r in rules.rules if rule is None or r.name == rule]
    if not chosen:
        raise NotFound(f"no rule {rule!r}; rules: {', '.join(r.name for r in rules.rules)}")
    streaks = src.streaks().get(view.key, {})
    return {
        "function": view.key,
        "observed_at": view.observed_at,
        "invocations": view.facts.get("invocations"),
        "rules": [why_rule(view, r, streaks.get(r.name, 0)) for r in chosen],
    }


def why_rule(view: FunctionView, compiled: CompiledRule, streak: int) -> dict[str, Any]:
    """Why one rule fired or did not fire for one function, clause by clause."""
    rule = compiled.rule
    facts = view.facts
    applies = compiled.matches_all or rule.match.matches(view.target)
    explanation = explain(rule.when, facts)
    if not applies:
        verdict, text = "not applicable", "its match selects other functions"
    elif not facts.get("invocations"):
        verdict, text = (
            "no data",
            "no invocations in the window: rules are not evaluated without traffic",
        )
    elif rule.name in view.findings:
        verdict, text = "fired", f"the condition held for {max(streak, rule.for_windows)} window(s)"
    elif explanation.value is True:
        verdict = "waiting"
        text = f"the condition holds, {streak} of {rule.for_windows} consecutive windows so far"
    elif explanation.value is None:
        missing = sorted(
            {
                n
                for c in explanation.clauses
                if c.value is None
                for n, v in c.facts.items()
                if v is None
            }
        )
        verdict, text = "no data", "no data for " + (", ".join(missing) or "a clause")
    else:
        failing = [c.text for c in explanation.clauses if c.value is False]
        verdict = "did not fire"
        text = "does not hold: " + ("; ".join(failing) if failing else rule.when)
    return {
        "rule": rule.name,
        "description": rule.description,
        "severity": rule.severity.value,
        "applies": applies,
        "verdict": verdict,
        "text": text,
        "streak": streak,
        "for": rule.for_windows,
        "condition": explanation.to_json(),
    }


def topology_json(src: Sources, key: str | None = None, limit: int = 500) -> dict[str, Any]:
    """Functions and the dependencies they call, from the latest observed facts.

    Every dependency is counted; the edges (and their functions) are cut at ``limit``,
    failing edges first, so that a fleet of thousands stays one readable answer.  The
    whole fleet's answer is built once per cycle.
    """
    cached = src._topology
    if not key and cached is not None and cached[:2] == (src.state.version, limit):
        return cached[2]
    answer = _topology(src, key, limit)
    if not key:
        src._topology = (src.state.version, limit, answer)
    return answer


def _topology(src: Sources, key: str | None, limit: int) -> dict[str, Any]:
    views = [_view(src, key)] if key else src.state.functions()
    functions: list[dict[str, Any]] = []
    deps: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, Any]] = []
    for view in views:
        called = view.facts.get("dependencies") or {}
        if not called and not key:
            continue
        functions.append({"key": view.key, "name": view.target.ref.name})
        for name, d in called.items():
            node = deps.setdefault(name, {"name": name, "callers": 0, "failing": 0})
            node["callers"] += 1
            rate = d.get("error_rate")
            if isinstance(rate, float) and rate >= 0.5:
                node["failing"] += 1
            edges.append(
                {
                    "from": view.key,
                    "to": name,
                    "calls": d.get("calls"),
                    "error_rate": rate,
                    "latency_p95_ms": d.get("latency_p95_ms"),
                }
            )
    total = len(edges)
    if total > limit:
        edges.sort(key=lambda e: -(e["error_rate"] or 0.0))
        edges = edges[:limit]
        shown = {e["from"] for e in edges}
        functions = [f for f in functions if f["key"] in shown]
    return {
        "functions": functions,
        "dependencies": sorted(deps.values(), key=lambda n: n["name"]),
        "edges": edges,
        "total_edges": total,
        "source": "observed dependency calls",
    }
