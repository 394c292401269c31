"""The command line's insight: ``tuner why``, ``tuner status`` and ``tuner explain --facts``.

``why`` and ``status`` ask the running daemon (``--url``, by default the address ``tuner run``
serves); when no daemon answers they fall back to the store: the facts recorded with the
function's latest decision, and the states its decisions imply.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from tuner.cli.arguments import command_config
from tuner.daemon.live import FunctionView
from tuner.decisions.documents import decision_json
from tuner.domain.decisions import Decision, Kind
from tuner.domain.model import FunctionConfig, FunctionRef, Target
from tuner.domain.times import iso
from tuner.engine.explaining import fact_value, plain
from tuner.engine.rulefiles import RuleBase
from tuner.web.api import why_rule
from tuner.web.fleet import STATES, fleet_state, severity_of

URL_ENV = "TUNER_URL"
DEFAULT_URL = "http://127.0.0.1:8780"


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
    p.add_argument("--url", help=f"the daemon's address (default ${URL_ENV} or {DEFAULT_URL})")


def _get(url: str, path: str, params: Mapping[str, str]) -> Any:
    """GET a JSON answer from the daemon; None when no daemon answers there."""
    full = url.rstrip("/") + path + "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(full, timeout=3) as answer:  # noqa: S310 - an http URL we build
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("error", "")
        except ValueError:
            detail = ""
        raise LookupError(detail or f"{full}: HTTP {exc.code}") from None
    except (OSError, ValueError):
        return None


def _url(args: argparse.Namespace) -> str:
    return str(args.url or os.environ.get(URL_ENV) or DEFAULT_URL)


def _print(text: str = "") -> None:
    print(text, flush=True)


# ---------------------------------------------------------------- why


def cmd_why(args: argparse.Namespace) -> int:
    """Print, clause by clause, why each rule fired or did not fire for a function."""
    params = {"function": args.function, **({"rule": args.rule} if args.rule else {})}
    try:
        answer = _get(_url(args), "/api/why", params)
    except LookupError as exc:
        _print(f"tuner why: {exc}")
        return 1
    if answer is not None:
        answer["source"] = f"the running daemon at {_url(args)}"
    else:
        answer = _why_from_store(args)
        if answer is None:
            _print(
                f"tuner why: no daemon answers at {_url(args)} and the store holds no facts "
                f"for {args.function!r}"
            )
            return 1
    if args.json:
        _print(json.dumps(plain(answer), indent=2))
    else:
        _print(why_text(answer))
    return 0


def _why_from_store(args: argparse.Namespace) -> dict[str, Any] | None:
    from tuner.daemon.reloading import RuleSource
    from tuner.store.audit import SqliteStore

    config = command_config(args.config)
    path = config.store_path()
    if not path.exists():
        return None
    store = SqliteStore(path)
    try:
        latest = [
            d for d in store.decisions(limit=5000) if args.function in (d.ref.key, d.ref.name)
        ]
    finally:
        store.close()
    with_facts = [d for d in latest if d.facts]
    if not with_facts:
        return None
    decision = with_facts[-1]
    rules = RuleSource(config.rule_paths()).rules
    view = _view_of(decision)
    chosen = [r for r in rules.rules if args.rule in (None, r.name)]
    if not chosen:
        raise SystemExit(f"tuner why: no rule {args.rule!r}")
    return {
        "function": decision.ref.key,
        "observed_at": decision.time,
        "invocations": decision.facts.get("invocations"),
        "rules": [why_rule(view, r, 0) for r in chosen],
        "source": f"the facts recorded with the decision at {_clock(decision.time)} "
        "(no daemon answered)",
    }


def _view_of(decision: Decision) -> FunctionView:
    facts = dict(decision.facts)
    memory = facts.get("memory_mb")
    labels = facts.get("labels")
    target = Target(
        decision.ref,
        FunctionConfig(memory_mb=int(memory) if isinstance(memory, float) else 0),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {},
    )
    findings = (decision.rule,) if decision.kind is Kind.FINDING else ()
    return FunctionView(target, facts, findings, decision.time)


def _clock(t: float | None) -> str:
    return iso(t) if t else "-"


def _value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


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
    rows, source = _rows_from_daemon(args)
    if rows is None:
        rows, source = _rows_from_store(args)
    if args.state:
        rows = [r for r in rows if r["state"] == args.state]
    if args.json:
        _print(json.dumps(plain(rows), indent=2))
        return 0
    _print(status_table(rows))
    _print(f"\n{len(rows)} functions, from {source}")
    return 0


def _rows_from_daemon(args: argparse.Namespace) -> tuple[list[dict[str, Any]] | None, str]:
    url = _url(args)
    rows: list[dict[str, Any]] = []
    page, pages = 1, 1
    while page <= pages:
        answer = _get(url, "/api/fleet", {"page": str(page), "per_page": "500"})
        if answer is None:
            return None, ""
        rows.extend(answer["rows"])
        pages = int(answer["pages"])
        page += 1
    return rows, f"the running daemon at {url}"


def _rows_from_store(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    from tuner.store.audit import SqliteStore

    path = command_config(args.config).store_path()
    if not path.exists():
        return [], f"nowhere: no daemon answered and {path} does not exist"
    store = SqliteStore(path)
    try:
        decisions = store.decisions(limit=100_000)
    finally:
        store.close()
    newest = decisions[-1].time if decisions else time.time()
    source = (
        f"the store as of its newest decision, {_clock(newest)} (no daemon answered: "
        "functions without decisions are not listed)"
    )
    return store_rows(decisions, newest), source


def store_rows(decisions: Sequence[Decision], now: float) -> list[dict[str, Any]]:
    """Fleet rows from decisions alone (functions without a decision are not known)."""
    last: dict[FunctionRef, Decision] = {}
    change: dict[FunctionRef, Decision] = {}
    for d in decisions:
        last[d.ref] = d
        if d.change is not None and d.kind is not Kind.RESOLVED:
            change[d.ref] = d
    rows = []
    for ref, d in sorted(last.items()):
        c = change.get(ref)
        facts = d.facts or None
        findings = (d.rule,) if d.kind is Kind.FINDING else ()
        rows.append(
            {
                "key": ref.key,
                "name": ref.name,
                "provider": ref.provider,
                "state": fleet_state(facts, findings, d, c, None, now),
                "severity": severity_of((), c, None, now) if c else d.severity.value,
                "last_change": None if c is None else decision_json(c),
            }
        )
    return rows


def status_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The fleet as a text table."""
    header = ("function", "provider", "state", "last change", "severity")
    lines = []
    for r in rows:
        c = r.get("last_change")
        change = "-" if not c else f"{c['change']} ({c['rule']}, {c['state']}, {c['time']})"
        lines.append((r["key"], r["provider"], r["state"], change, r.get("severity") or "-"))
    if not lines:
        return "no functions known yet"
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
