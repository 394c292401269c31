"""``tuner explain``: the history of decisions, as text rows or JSON, times in UTC.

Times are ISO 8601 in UTC (``2026-11-30T17:41:00Z``) in text and JSON alike.  One
message sent for several functions (an outage grouped by its dependency) is one text
row naming the functions it covered; JSON keeps one record per decision, with its
``group``, for tools.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tuner.cli.arguments import CONFIG_HELP, command_config, count, say
from tuner.decisions.advice import flame_graph_command
from tuner.decisions.documents import decision_json
from tuner.decisions.planning import FUNCTION_GROUP
from tuner.domain.decisions import Decision, Kind
from tuner.domain.lifecycle import JUDGED, State
from tuner.domain.naming import function_key
from tuner.domain.times import iso
from tuner.store.audit import SqliteStore

ALL = sys.maxsize
"""A limit that reads every decision."""

_SAME_MESSAGE_S = 1.0
"""Decisions of one group recorded this close together went out as one message."""


def decision_line(d: Decision, functions: str | None = None) -> str:
    """One text row: time, function (or the functions a grouped message covered), what happened."""
    change = f"  {d.change.describe()}" if d.change else ""
    reason = f"  ({d.why})" if d.why else ""
    who = functions if functions is not None else d.ref.key
    ids = d.trace_ids
    traces = f"  [traces {' '.join(ids)}: {flame_graph_command(d.facts)}]" if ids else ""
    again = f"  [{d.seen} cycles, last {iso(d.last_seen)}]" if d.seen > 1 and d.last_seen else ""
    return (
        f"{iso(d.time)}  {who:28} {d.rule:16} {d.action:16} {d.state.value:11}"
        f"{change}{reason}{again}{traces}"
    )


@dataclass
class _Row:
    first: Decision
    last_time: float
    functions: list[str] = field(default_factory=list)


def grouped_lines(decisions: Sequence[Decision]) -> list[str]:
    """Text rows, one per decision, except one per message that covered several functions."""
    rows: list[_Row] = []
    open_rows: dict[tuple[str, str, str, str], _Row] = {}
    for d in decisions:
        key = (d.group, d.rule, d.action, d.state.value)
        row = open_rows.get(key) if d.group and not d.group.startswith(FUNCTION_GROUP) else None
        if row is not None and d.time - row.last_time <= _SAME_MESSAGE_S and d.change is None:
            row.functions.append(d.ref.name)
            row.last_time = d.time
            continue
        row = _Row(d, d.time, [d.ref.name])
        rows.append(row)
        if d.change is None:
            open_rows[key] = row
    out = []
    for row in rows:
        if len(row.functions) == 1:
            out.append(decision_line(row.first))
        else:
            group = row.first.group
            who = f"{group} ({len(row.functions)} functions: {', '.join(row.functions)})"
            out.append(decision_line(row.first, who))
    return out


def matches(d: Decision, wanted: str) -> bool:
    """True when the decision is about the function named (by name or by key)."""
    return wanted in (d.ref.name, d.ref.key)


def rests_on(d: Decision, trace: str) -> bool:
    """True when the decision's evidence names the trace (by its id or a prefix of it)."""
    return bool(trace) and any(i.startswith(trace.lower()) for i in d.trace_ids)


def history(
    store: SqliteStore, function: str | None, limit: int, trace: str | None = None
) -> list[Decision]:
    """The newest ``limit`` decisions, of one function when named, resting on one trace when
    given (filtered before limiting)."""
    if function is None and trace is None:
        return store.decisions(limit=limit)
    mine = [
        d
        for d in store.decisions(limit=ALL)
        if (function is None or matches(d, function)) and (trace is None or rests_on(d, trace))
    ]
    return mine[-limit:] if limit > 0 else []


def known_functions(store: SqliteStore) -> set[str]:
    """The keys of the functions the store holds decisions for."""
    return {d.ref.key for d in store.decisions(limit=ALL)}


def _left_alone(name: str, known: set[str], seen: dict[str, tuple[float, Any]]) -> int:
    """Say that a function seen but never decided about was left alone, or that it is unknown."""
    try:
        key = function_key(name, known)
    except LookupError as exc:
        print(f"tuner explain: {exc}", file=sys.stderr)
        return 1
    if key not in seen:
        print(f"tuner explain: no decision about {key} matches", file=sys.stderr)
        return 1
    say(f"{key}: no decisions: tuner left it alone (last seen {iso(seen[key][0])})")
    return 0


def summary_table(decisions: Sequence[Decision]) -> str:
    """A readable table per function: what was found, what was changed, what was verified.

    Below it, each change with what it was sized from (the plan's own words).
    """
    rows: dict[str, dict[str, list[str]]] = {}
    sized: list[str] = []
    for d in decisions:
        row = rows.setdefault(
            d.ref.name, {"found": [], "changed": [], "verified": [], "evidence": []}
        )
        if d.kind is not Kind.RESOLVED and d.rule not in row["found"]:
            row["found"].append(d.rule)
        if d.change is not None and d.applied and d.kind is not Kind.ROLLBACK:
            rolled_back = d.state is State.ROLLED_BACK
            row["changed"].append(d.change.describe() + (" (rolled back)" if rolled_back else ""))
            row["verified"].append("pending" if d.state is State.APPLIED else d.state.value)
            if (d.state in JUDGED or rolled_back) and d.reason:
                row["evidence"].append(d.reason.split(";")[0])
            sized.append(f"  {d.ref.name}: {d.summary}")
        elif d.state in (State.NOTIFIED, State.RECOMMENDED) and d.kind is not Kind.RESOLVED:
            label = "told the owners" if d.state is State.NOTIFIED else "recommended"
            if label not in row["changed"]:
                row["changed"].append(label)
    if not rows:
        return "Nothing found: every function looked healthy."
    header = ("function", "found", "changed", "verified", "evidence")
    columns = ("found", "changed", "verified", "evidence")
    lines = [(name, *("; ".join(r[c]) or "-" for c in columns)) for name, r in sorted(rows.items())]
    widths = [max(len(x[i]) for x in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out.extend(fmt.format(*line) for line in lines)
    if sized:
        out += ["", "How each change was sized:", *sized]
    return "\n".join(out)


def cmd_explain(args: argparse.Namespace) -> int:
    """Print the history of decisions, for one function or all."""
    config = command_config(args.config, quiet=True)
    path = config.store_path()
    if not path.exists():
        print(f"no history yet: {path} does not exist", file=sys.stderr)
        return 1
    store = SqliteStore(path)
    try:
        decisions = history(store, args.function, args.limit, args.trace)
        seen = store.functions() if args.function and not decisions else {}
        known = known_functions(store) | set(seen) if args.function and not decisions else set()
    finally:
        store.close()
    if args.trace and not decisions:
        print(f"no decision rests on trace {args.trace}", file=sys.stderr)
        return 1
    if args.function and not decisions:
        return _left_alone(args.function, known, seen)
    if args.facts:
        from tuner.cli.insight import explain_facts
        from tuner.daemon.reloading import RuleSource

        say(explain_facts(decisions, RuleSource(config.rule_paths()).rules, args.json))
        return 0
    if args.json:
        say(json.dumps([decision_json(d) for d in decisions], indent=2))
    else:
        for line in grouped_lines(decisions):
            say(line)
    return 0


def register(sub: Any) -> None:
    """Add ``explain`` to the ``tuner`` command's subparsers."""
    explain = sub.add_parser("explain", help="show the history of decisions")
    explain.add_argument("function", nargs="?", help="only this function (name or key)")
    explain.add_argument("-c", "--config", help=CONFIG_HELP + ", for its store")
    explain.add_argument("--json", action="store_true", help="one JSON record per decision")
    explain.add_argument(
        "--limit", type=count, default=1000, help="the newest N decisions (default 1000)"
    )
    explain.add_argument(
        "--facts", action="store_true", help="show the facts each decision rested on"
    )
    explain.add_argument("--trace", help="only decisions whose evidence names this trace id")
    explain.set_defaults(fn=cmd_explain)
