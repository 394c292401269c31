"""The command line: ``tuner run | once | check | explain | schema | facts``.

With no configuration file tuner runs its embedded default: the local function host
with the example functions of ``examples/local``, the bundled rules, a SQLite store in
``.tuner/`` and notifications on the console.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuner.config import TunerConfig, load_config
from tuner.engine.facts import FACTS
from tuner.engine.rulefiles import (
    load_yaml,
    parse_duration,
    parse_rules,
    rules_schema,
    yaml_files,
)
from tuner.errors import ConfigError, Problem
from tuner.logs import configure
from tuner.model import Decision, FunctionRef, Outcome, Verification
from tuner.store import SqliteStore

SCHEMA_PATH = Path("rules/schema.json")
DEMO_INTERVAL_S = 10.0


def _config(path: str | None) -> TunerConfig:
    config = load_config(path)
    if path is None:
        # The embedded default: short windows and a short group wait, so the demo shows
        # its results and messages within a minute.
        config = config.model_copy(
            update={"interval": DEMO_INTERVAL_S, "routing": {"group_wait": DEMO_INTERVAL_S / 2}}
        )
    return config


def _print(text: str = "") -> None:
    print(text, flush=True)


# ---------------------------------------------------------------- run / once


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until stopped (or for ``--for``), then print a summary."""
    from tuner.loop import CycleReport, run_forever
    from tuner.wiring import build

    config = _config(args.config)
    if args.fresh:
        if args.config:
            raise ConfigError(
                [Problem(args.config, None, "--fresh only resets the embedded demo's state")]
            )
        shutil.rmtree(config.store_path().parent, ignore_errors=True)
    if args.interval:
        config = config.model_copy(update={"interval": parse_duration(args.interval)})
    configure(
        config.log.format if not args.verbose else "console", "debug" if args.verbose else "warning"
    )
    tuner = build(config)
    started = time.time()
    _print(
        f"tuner: {len(tuner.rules.rules)} rules, {len(tuner.providers)} provider(s), mode {config.mode.value}, "
        f"a cycle every {config.interval:g} s, store {config.store_path()}"
    )
    cycles = 0

    def on_cycle(report: CycleReport) -> None:
        nonlocal cycles
        cycles += 1
        applied = [d for d in report.decisions if d.outcome is Outcome.APPLIED]
        _print(
            f"[cycle {cycles} +{report.started - started:4.0f}s] {report.targets} functions, "
            f"{report.findings} findings, {len(applied)} changes, {len(report.verified)} verified"
            + (f", {len(report.errors)} errors" if report.errors else "")
        )
        for d in applied:
            _print(
                f"    changed  {d.ref.name}: {d.change.describe() if d.change else ''}  ({d.rule})"
            )
        for d in report.verified:
            _print(
                f"    verified {d.ref.name}: {d.change.describe() if d.change else ''} -> {d.verification}"
            )
        for d in report.decisions:
            if d.outcome in (Outcome.FAILED, Outcome.ROLLED_BACK):
                _print(f"    {d.outcome.value:8} {d.ref.name}: {d.summary} {d.reason}")

    try:
        tuner.start()
        for provider in tuner.providers:  # e.g. how to call the local invoke endpoint
            for note in getattr(provider, "start_notes", list)():
                _print(note)
        run_forever(
            tuner.daemon,
            config.interval,
            duration_s=parse_duration(args.duration) if args.duration else None,
            on_cycle=on_cycle,
            before_cycle=tuner.rules.reload,
        )
    finally:
        tuner.close()
    store = SqliteStore(config.store_path())
    try:
        _print()
        _print(summary_table(store.decisions(since=started, limit=100_000)))
    finally:
        store.close()
    return 0


def cmd_once(args: argparse.Namespace) -> int:
    """Run one cycle and print its decisions."""
    from tuner.wiring import build

    config = _config(args.config)
    configure(config.log.format, "warning")
    tuner = build(config)
    try:
        tuner.start()
        report = tuner.daemon.run_cycle()
    finally:
        tuner.close()
    decisions = report.decisions + report.verified
    if args.json:
        _print(json.dumps([decision_json(d) for d in decisions], indent=2))
    else:
        for d in decisions:
            _print(_line(d))
        if not decisions:
            _print(f"no findings ({report.targets} functions observed)")
    return 1 if report.errors else 0


# ---------------------------------------------------------------- explain


def decision_json(d: Decision) -> dict[str, Any]:
    """The JSON form of a decision, as ``explain --json`` prints it."""
    c = d.change
    return {
        "id": d.id,
        "time": d.time,
        "function": d.ref.key,
        "rule": d.rule,
        "action": d.action,
        "knob": c.knob.value if c else None,
        "before": c.before if c else None,
        "after": c.after if c else None,
        "mode": d.mode.value,
        "outcome": d.outcome.value,
        "applied": d.applied,
        "verified": d.verification.value if d.verification else None,
        "severity": d.severity.value,
        "summary": d.summary,
        "advice": d.advice,
        "reason": d.reason,
    }


def _line(d: Decision) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(d.time))
    change = f"  {d.change.describe()}" if d.change else ""
    verified = f"  verified: {d.verification.value}" if d.verification else ""
    reason = f"  ({d.reason})" if d.reason else ""
    return f"{stamp}  {d.ref.key:28} {d.rule:16} {d.action:16} {d.outcome.value:11}{change}{verified}{reason}"


def cmd_explain(args: argparse.Namespace) -> int:
    """Print the history of decisions, for one function or all."""
    config = _config(args.config)
    path = config.store_path()
    if not path.exists():
        _print(f"no history yet: {path} does not exist")
        return 1
    store = SqliteStore(path)
    try:
        decisions = store.decisions(limit=args.limit)
    finally:
        store.close()
    if args.function:
        decisions = [d for d in decisions if _names(d.ref, args.function)]
    if args.json:
        _print(json.dumps([decision_json(d) for d in decisions], indent=2))
    else:
        for d in decisions:
            _print(_line(d))
    return 0


def _names(ref: FunctionRef, wanted: str) -> bool:
    return wanted in (ref.name, ref.key)


def summary_table(decisions: Sequence[Decision]) -> str:
    """A readable table per function: what was found, what was changed, what was verified."""
    rows: dict[str, dict[str, list[str]]] = {}
    for d in decisions:
        row = rows.setdefault(
            d.ref.name, {"found": [], "changed": [], "verified": [], "evidence": []}
        )
        if d.action != "resolved" and d.rule not in row["found"]:
            row["found"].append(d.rule)
        if d.change is not None and d.outcome in (Outcome.APPLIED, Outcome.ROLLED_BACK):
            row["changed"].append(
                d.change.describe() + (" (rolled back)" if d.outcome is Outcome.ROLLED_BACK else "")
            )
            row["verified"].append(d.verification.value if d.verification else "-")
            if d.verification and d.verification is not Verification.PENDING and d.reason:
                row["evidence"].append(d.reason.split(";")[0])
        elif d.outcome in (Outcome.NOTIFIED, Outcome.RECOMMENDED) and d.action != "resolved":
            label = "told the owners" if d.outcome is Outcome.NOTIFIED else "recommended"
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
    return "\n".join(out)


# ---------------------------------------------------------------- check / schema / facts


def check_file(path: Path) -> list[Problem]:
    """Validate a rule file or a configuration file, told apart by their content."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return [Problem(str(path), None, f"cannot read: {exc.strerror}")]
    try:
        data, _ = load_yaml(text, str(path))
        rules = data.get("rules") if isinstance(data, dict) else None
        is_rule_file = isinstance(rules, list) and any(isinstance(r, dict) for r in rules)
        if is_rule_file or (isinstance(data, dict) and "version" in data):
            parse_rules(text, str(path))
        else:
            from tuner.config import parse_config
            from tuner.reloading import RuleSource
            from tuner.wiring import check_rule_channels, notify_settings, provider_settings

            config = parse_config(text, str(path))
            provider_settings(config)
            channels = set(notify_settings(config).channels)
            check_rule_channels(RuleSource(config.rule_paths()), channels)
    except ConfigError as exc:
        return exc.problems
    return []


def check_path(path: Path) -> list[Problem]:
    """Validate a file, or every YAML file in a folder."""
    return [p for f in yaml_files([path]) for p in check_file(f)]


def cmd_check(args: argparse.Namespace) -> int:
    """Validate files; exit 0 when all are valid, 2 with ``file:line`` errors otherwise."""
    problems = [p for name in args.paths for p in check_path(Path(name))]
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        _print(f"ok: {len(args.paths)} path(s) valid")
    return 2 if problems else 0


def schema_text() -> str:
    """The rule-file JSON Schema as it is written to ``rules/schema.json``."""
    return json.dumps(rules_schema(), indent=2, sort_keys=True) + "\n"


def cmd_schema(args: argparse.Namespace) -> int:
    """Write (or check) the rule-file JSON Schema."""
    text = schema_text()
    target = Path(args.output)
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{target} is stale: run 'tuner schema'", file=sys.stderr)
            return 1
        _print(f"{target} is current")
        return 0
    if args.output == "-":
        sys.stdout.write(text)
    else:
        target.write_text(text, encoding="utf-8")
        _print(f"wrote {target}")
    return 0


def cmd_facts(args: argparse.Namespace) -> int:
    """Print the fact reference: every name a condition may use."""
    for name, doc in FACTS.items():
        unit = f" [{doc.unit}]" if doc.unit else ""
        _print(f"{name:30} {doc.type.value:7}{unit:9} {doc.doc}")
    return 0


# ---------------------------------------------------------------- main


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tuner`` command."""
    p = argparse.ArgumentParser(
        prog="tuner", description="Autotuning daemon for serverless functions."
    )
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon (the embedded demo without -c)")
    run.add_argument("-c", "--config", help="tuner.yaml (default: the embedded local host)")
    run.add_argument("--for", dest="duration", help="stop after this long, e.g. 90s or 10m")
    run.add_argument("--interval", help="override the cycle interval, e.g. 10s")
    run.add_argument(
        "--fresh",
        action="store_true",
        help="embedded demo only: start from the shipped examples (clears .tuner/)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="log every step")
    run.set_defaults(fn=cmd_run)

    once = sub.add_parser("once", help="run one cycle and print its decisions")
    once.add_argument("-c", "--config")
    once.add_argument("--json", action="store_true")
    once.set_defaults(fn=cmd_once)

    check = sub.add_parser("check", help="validate rule or configuration files")
    check.add_argument("paths", nargs="+")
    check.set_defaults(fn=cmd_check)

    explain = sub.add_parser("explain", help="show the history of decisions")
    explain.add_argument("function", nargs="?")
    explain.add_argument("-c", "--config")
    explain.add_argument("--json", action="store_true")
    explain.add_argument("--limit", type=int, default=1000)
    explain.set_defaults(fn=cmd_explain)

    schema = sub.add_parser("schema", help="write the rule-file JSON Schema")
    schema.add_argument("-o", "--output", default=str(SCHEMA_PATH))
    schema.add_argument("--check", action="store_true", help="fail when the file is stale")
    schema.set_defaults(fn=cmd_schema)

    facts = sub.add_parser("facts", help="list the facts a rule condition may use")
    facts.set_defaults(fn=cmd_facts)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tuner`` console script."""
    args = parser().parse_args(argv)
    try:
        code: int = args.fn(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
