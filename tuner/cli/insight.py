"""The command line's insight: ``tuner why``, ``tuner status`` and ``tuner explain --facts``.

``why`` and ``status`` ask the running daemon (``--url``, by default the address ``tuner run``
serves); when no daemon answers they fall back to the store: the facts recorded with the
function's latest decision, and the states its decisions imply.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

from tuner.cli.arguments import command_config
from tuner.cli.asking import URL_ENV, Asking
from tuner.daemon.live import FunctionView
from tuner.daemon.reloading import RuleSource
from tuner.decisions.documents import decision_json
from tuner.domain.decisions import Decision, Kind
from tuner.domain.model import FunctionConfig, FunctionRef, Target
from tuner.domain.naming import did_you_mean, function_key
from tuner.domain.times import iso
from tuner.engine.explaining import fact_value, plain, shown
from tuner.engine.rulefiles import RuleBase
from tuner.web.api import why_rule
from tuner.web.fleet import STATES, fleet_state, severity_of


def register(sub: Any) -> None:
    """Add ``why`` and ``status`` to the ``tuner`` command's subparsers."""
    why = sub.add_parser("why", help="why each rule fired or did not fire for a function")
    why.add_argument("function", help="a function's name or key, e.g. greeter or local:greeter")
    why.add_argument("rule", nargs="?", help="only this rule")
    _common(why)
    why.set_defaults(fn=cmd_why)
    status = sub.add_parser("status", help="the fleet: each function's state")
    _common(status)
    status.add_argument("--state", help="only functions in this state", choices=STATES)
    status.set_defaults(fn=cmd_status)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c", "--config", help="the configuration file (default: the embedded local host)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--url", help=f"the daemon's address (default ${URL_ENV}, else the configuration's http)"
    )


def _print(text: str = "") -> None:
    print(text, flush=True)


# ---------------------------------------------------------------- why


def cmd_why(args: argparse.Namespace) -> int:
    """Print, clause by clause, why each rule fired or did not fire for a function."""
    config = command_config(args.config, quiet=True)
    asking = Asking.of(config, args.url)
    params = {"function": args.function, **({"rule": args.rule} if args.rule else {})}
    try:
        answer = asking.get("/api/why", params)
        if answer is not None:
            answer["source"] = asking.source
        else:
            answer = _why_from_store(args, asking)
    except LookupError as exc:
        _print(f"tuner why: {exc}")
        return 1
    if args.json:
        _print(json.dumps(plain(answer), indent=2))
    else:
        _print(why_text(answer))
    return 0


def _why_from_store(args: argparse.Namespace, asking: Asking) -> dict[str, Any]:
    """The why answer from the function's last facts in the store (or its latest decision's)."""
    decisions, functions = asking.read_store()
    keys = {d.ref.key for d in decisions} | set(functions)
    key = function_key(args.function, keys)  # LookupError: unknown, with "did you mean"
    seen, facts = functions.get(key, (None, {}))
    latest = [d for d in decisions if d.ref.key == key and d.facts]
    if latest and (seen is None or latest[-1].time > seen):
        seen, facts = latest[-1].time, dict(latest[-1].facts)
    if seen is None:
        raise LookupError(f"the store holds no facts for {key!r}")
    rules = RuleSource(asking.config.rule_paths()).rules
    chosen = [r for r in rules.rules if args.rule in (None, r.name)]
    if not chosen:
        raise LookupError(
            f"no rule {args.rule!r}{did_you_mean(args.rule, [r.name for r in rules.rules])}"
        )
    fired = tuple(d.rule for d in latest[-1:] if d.kind is Kind.FINDING and d.time >= seen)
    view = FunctionView(_target_of(key, facts), facts, fired, seen)
    return {
        "function": key,
        "observed_at": seen,
        "invocations": facts.get("invocations"),
        "rules": [why_rule(view, r, 0) for r in chosen],
        "source": asking.store_source(seen),
    }


def _target_of(key: str, facts: Mapping[str, Any]) -> Target:
    """The target as far as its recorded facts tell (its memory and labels)."""
    memory = facts.get("memory_mb")
    labels = facts.get("labels")
    return Target(
        FunctionRef.parse(key),
        FunctionConfig(memory_mb=int(memory) if isinstance(memory, float) else 0),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {},
    )


def _clock(t: float | None) -> str:
    return iso(t) if t else "-"


def _value(v: Any) -> str:
    return shown(v)


def why_text(answer: Mapping[str, Any]) -> str:
    """The why/why-not answer as text, one rule after another."""
    lines = [
        f"{answer['function']}: {_value(answer.get('invocations'))} invocations, facts from "
        f"{answer.get('source', 'the daemon')}"
    ]
    for r in answer["rules"]:
        lines.append("")
        lines.append(f"{r['rule']:16} {r['verdict'].upper()}: {r['text']}")
        cond = r["condition"]
        for c in cond["clauses"]:
            values = ", ".join(f"{k} = {_value(v)}" for k, v in c["facts"].items())
            lines.append(f"    {c['status']:13} {c['text']}" + (f"   [{values}]" if values else ""))
            for p in c["parts"]:
                values = ", ".join(f"{k} = {_value(v)}" for k, v in p["facts"].items())
                lines.append(
                    f"      {p['status']:13} {p['text']}" + (f"   [{values}]" if values else "")
                )
    return "\n".join(lines)


# ---------------------------------------------------------------- status


def cmd_status(args: argparse.Namespace) -> int:
    """Print the fleet table: function, provider, state, last change, severity."""
    asking = Asking.of(command_config(args.config, quiet=True), args.url)
    rows = _rows_from_daemon(asking)
    source = asking.source
    if rows is None:
        decisions, functions = asking.read_store()
        now = max([d.time for d in decisions] + [s for s, _ in functions.values()], default=0.0)
        rows, source = store_rows(decisions, functions, now), asking.store_source(now or None)
    if args.state:
        rows = [r for r in rows if r["state"] == args.state]
    if args.json:
        _print(json.dumps(plain(rows), indent=2))
        return 0
    _print(status_table(rows, args.state))
    _print(f"\n{len(rows)} functions, from {source}")
    return 0


def _rows_from_daemon(asking: Asking) -> list[dict[str, Any]] | None:
    rows: list[dict[str, Any]] = []
    page, pages = 1, 1
    while page <= pages:
        answer = asking.get("/api/fleet", {"page": str(page), "per_page": "500"})
        if answer is None:
            return None
        rows.extend(answer["rows"])
        pages = int(answer["pages"])
        page += 1
    return rows


def store_rows(
    decisions: Sequence[Decision],
    functions: Mapping[str, tuple[float, Mapping[str, Any]]],
    now: float,
) -> list[dict[str, Any]]:
    """Fleet rows from the store: every function seen, its last facts and decisions."""
    last: dict[str, Decision] = {}
    change: dict[str, Decision] = {}
    for decision in decisions:
        last[decision.ref.key] = decision
        if decision.change is not None and decision.kind is not Kind.RESOLVED:
            change[decision.ref.key] = decision
    rows = []
    for key in sorted(set(last) | set(functions)):
        ref = FunctionRef.parse(key)
        d, c = last.get(key), change.get(key)
        seen, facts = functions.get(key, (None, None))
        if d is not None and d.facts and (seen is None or d.time > seen):
            facts = d.facts
        findings = (d.rule,) if d is not None and d.kind is Kind.FINDING else ()
        rows.append(
            {
                "key": key,
                "name": ref.name,
                "provider": ref.provider,
                "state": fleet_state(facts, findings, d, c, None, now),
                "severity": severity_of((), c, None, now) if c else (d.severity.value if d else ""),
                "last_change": None if c is None else decision_json(c),
            }
        )
    return rows


def status_table(rows: Sequence[Mapping[str, Any]], state: str | None = None) -> str:
    """The fleet as a text table (``state``: the filter the rows passed)."""
    header = ("function", "provider", "state", "last change", "severity")
    lines = []
    for r in rows:
        c = r.get("last_change")
        change = "-" if not c else f"{c['change']} ({c['rule']}, {c['state']}, {c['time']})"
        lines.append((r["key"], r["provider"], r["state"], change, r.get("severity") or "-"))
    if not lines:
        return f"no function is {state!r}" if state else "no functions known yet"
    widths = [max(len(x[i]) for x in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out.extend(fmt.format(*line) for line in lines)
    return "\n".join(out)


# ---------------------------------------------------------------- explain --facts


def explain_facts(decisions: Sequence[Decision], rules: RuleBase | None, as_json: bool) -> str:
    """Each decision with the facts it rested on: those its rule's condition reads first."""
    out: list[Any] = []
    for d in decisions:
        compiled = rules.by_name(d.rule) if rules else None
        read = sorted(compiled.condition.facts) if compiled else []
        if as_json:
            out.append(
                {
                    **decision_json(d),
                    "condition": compiled.rule.when if compiled else None,
                    "condition_facts": {n: fact_value(d.facts, n) for n in read},
                    "facts": dict(d.facts),
                }
            )
            continue
        change = f"  {d.change.describe()}" if d.change else ""
        out.append(f"{_clock(d.time)}  {d.ref.key}  {d.rule}  {d.action}  {d.state.value}{change}")
        if compiled:
            out.append(f"    when: {compiled.rule.when}")
        for name in read:
            out.append(f"    {name:28} {_value(fact_value(d.facts, name))}")
        others = [
            k for k in d.facts if k not in read and k not in ("labels", "dependencies", "extra")
        ]
        if others:
            out.append(
                "    also: " + ", ".join(f"{k}={_value(d.facts[k])}" for k in sorted(others))
            )
        if not d.facts:
            out.append("    (no facts recorded)")
    return json.dumps(plain(out), indent=2) if as_json else "\n".join(out)
