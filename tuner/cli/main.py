"""The command line: ``tuner run | once | check | explain | schema | facts | profile | traces | topology``.

With no configuration file tuner runs its embedded default: the local function host
with the example functions of ``examples/local``, the bundled rules, a SQLite store in
``.tuner/`` and notifications on the console.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tuner.cli import insight as insight_commands
from tuner.cli.explaining import decision_line, summary_table
from tuner.cli.simulating import add_parser as add_simulate_parser
from tuner.daemon.config import TunerConfig, load_config
from tuner.daemon.logs import configure
from tuner.decisions.documents import decision_json
from tuner.domain.durations import parse_duration
from tuner.domain.errors import ConfigError, Problem
from tuner.domain.lifecycle import State
from tuner.engine.facts import EXTRA_FACTS, FACTS
from tuner.engine.rulefiles import rules_schema
from tuner.store.audit import SqliteStore
from tuner.web.addresses import DEFAULT_ADDRESS, parse_address

__all__ = ["decision_json", "main", "parser", "summary_table"]

SCHEMA_PATH = Path("rules/schema.json")
DEMO_INTERVAL_S = 10.0


def _config(path: str | None, *, quiet: bool = False) -> TunerConfig:
    config = load_config(path)
    if path is not None and "providers" not in config.model_fields_set and not quiet:
        print(
            f"{path}: no 'providers': running the embedded local host "
            "(add 'providers:' to watch AWS, Kubernetes or your own functions)",
            file=sys.stderr,
        )
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
    from tuner.daemon.loop import CycleReport
    from tuner.daemon.scheduling import run_forever
    from tuner.daemon.wiring import build

    config = _config(args.config)
    if args.fresh:
        if args.config:
            raise ConfigError(
                [Problem(args.config, None, "--fresh only resets the embedded demo's state")]
            )
        from tuner.store.claiming import ensure_unheld

        ensure_unheld(config.store_path())  # never delete the store of a running daemon
        shutil.rmtree(config.store_path().parent, ignore_errors=True)
    if args.interval:
        config = config.model_copy(update={"interval": args.interval})
    configure(
        config.log.format if not args.verbose else "console", "debug" if args.verbose else "warning"
    )
    tuner = build(config)
    started = time.time()
    _print(
        f"tuner: {len(tuner.rules.rules)} rules, {len(tuner.providers)} provider(s), mode {config.mode.value}, "
        f"a cycle every {config.interval:g} s, store {config.store_path()}"
    )
    from tuner.web.attaching import attach
    from tuner.web.controls import load_token

    try:
        chosen = hasattr(args, "http")  # the default address may be taken: then run without it
        address = args.http if chosen else parse_address(DEFAULT_ADDRESS)
        insight = attach(tuner, address, token=load_token(), required=chosen)
    except BaseException:
        tuner.close()
        raise
    if insight.url:
        _print(f"tuner: dashboard and metrics at {insight.url}")
    cycles = 0

    def on_cycle(report: CycleReport) -> None:
        nonlocal cycles
        cycles += 1
        applied = [d for d in report.decisions if d.state is State.APPLIED]
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
                f"    verified {d.ref.name}: {d.change.describe() if d.change else ''} -> {d.state.value}"
            )
        for d in report.decisions:
            if d.state is State.FAILED:
                _print(f"    {d.state.value:8} {d.ref.name}: {d.summary} {d.reason}")

    try:
        tuner.start()
        for provider in tuner.providers:  # e.g. how to call the local invoke endpoint
            for note in getattr(provider, "start_notes", list)():
                _print(note)
        run_forever(
            tuner.daemon,
            config.interval,
            duration_s=args.duration,
            on_cycle=on_cycle,
            before_cycle=tuner.rules.reload,
        )
    finally:
        insight.close()
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
    from tuner.daemon.wiring import build

    config = _config(args.config)
    configure(config.log.format, "warning")
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        tuner = build(config)  # under --json, messages (the console channel) go to stderr
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
            _print(decision_line(d))
        if not decisions:
            _print(f"no findings ({report.targets} functions observed)")
    return 1 if report.errors else 0


# ---------------------------------------------------------------- explain


def cmd_explain(args: argparse.Namespace) -> int:
    """Print the history of decisions, for one function or all."""
    from tuner.cli.explaining import grouped_lines, history, known_functions

    config = _config(args.config, quiet=True)
    path = config.store_path()
    if not path.exists():
        print(f"no history yet: {path} does not exist", file=sys.stderr)
        return 1
    store = SqliteStore(path)
    try:
        decisions = history(store, args.function, args.limit, args.trace)
        known = known_functions(store) if args.function and not decisions else []
    finally:
        store.close()
    if args.trace and not decisions:
        print(f"no decision rests on trace {args.trace}", file=sys.stderr)
        return 1
    if args.function and not decisions:
        hint = f" (functions with decisions: {', '.join(known)})" if known else ""
        print(f"no such function: {args.function}{hint}", file=sys.stderr)
        return 1
    if args.facts:
        from tuner.cli.insight import explain_facts
        from tuner.daemon.reloading import RuleSource

        _print(explain_facts(decisions, RuleSource(config.rule_paths()).rules, args.json))
        return 0
    if args.json:
        _print(json.dumps([decision_json(d) for d in decisions], indent=2))
    else:
        for line in grouped_lines(decisions):
            _print(line)
    return 0


# ---------------------------------------------------------------- check / schema / facts


def cmd_check(args: argparse.Namespace) -> int:
    """Validate files; exit 0 when all are valid, 2 with ``file:line`` errors otherwise."""
    from tuner.cli.checking import check_paths

    problems, checked = check_paths(args.paths)
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        _print(f"ok: {checked} file(s) valid")
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
    for name, doc in {**FACTS, **{f"extra.{n}": d for n, d in EXTRA_FACTS.items()}}.items():
        unit = f" [{doc.unit}]" if doc.unit else ""
        _print(f"{name:30} {doc.type.value:7}{unit:9} {doc.doc}")
    return 0


# ---------------------------------------------------------------- main


def _duration(text: str) -> float:
    """An argparse type: seconds from ``90s``, ``10m``, ``2h`` (a usage error otherwise)."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not isinstance(seconds, float) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"not a positive duration: {text!r}")
    return seconds


def _count(text: str) -> int:
    """An argparse type: a whole number, 1 or more."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of 1 or more: {text!r}")
    return int(text)


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tuner`` command."""
    from tuner import __version__

    p = argparse.ArgumentParser(
        prog="tuner", description="Autotuning daemon for serverless functions."
    )
    p.add_argument("--version", action="version", version=f"tuner {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    config_help = "tuner.yaml (default: the embedded local host and bundled rules)"

    run = sub.add_parser("run", help="run the daemon (the embedded demo without -c)")
    run.add_argument("-c", "--config", help=config_help)
    run.add_argument(
        "--for", dest="duration", type=_duration, help="stop after this long, e.g. 90s or 10m"
    )
    run.add_argument("--interval", type=_duration, help="override the cycle interval, e.g. 10s")
    run.add_argument(
        "--fresh",
        action="store_true",
        help="embedded demo only: start from the shipped examples (clears .tuner/)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="log every step")
    run.add_argument(
        "--http",
        default=argparse.SUPPRESS,
        type=parse_address,
        help=f"serve the dashboard and metrics at HOST:PORT, or off (default {DEFAULT_ADDRESS})",
    )
    run.set_defaults(fn=cmd_run)

    once = sub.add_parser("once", help="run one cycle and print its decisions")
    once.add_argument("-c", "--config", help=config_help)
    once.add_argument(
        "--json",
        action="store_true",
        help="print the decisions as JSON on stdout (messages go to stderr)",
    )
    once.set_defaults(fn=cmd_once)

    check = sub.add_parser("check", help="validate rule or configuration files")
    check.add_argument("paths", nargs="+", help="rule files, configuration files or folders")
    check.set_defaults(fn=cmd_check)

    explain = sub.add_parser("explain", help="show the history of decisions")
    explain.add_argument("function", nargs="?", help="only this function (name or key)")
    explain.add_argument("-c", "--config", help=config_help + ", for its store")
    explain.add_argument("--json", action="store_true", help="one JSON record per decision")
    explain.add_argument(
        "--limit", type=_count, default=1000, help="the newest N decisions (default 1000)"
    )
    explain.add_argument(
        "--facts", action="store_true", help="show the facts each decision rested on"
    )
    explain.add_argument("--trace", help="only decisions whose evidence names this trace id")
    explain.set_defaults(fn=cmd_explain)

    schema = sub.add_parser("schema", help="write the rule-file JSON Schema")
    schema.add_argument(
        "-o",
        "--output",
        default=str(SCHEMA_PATH),
        help=f"where to (default {SCHEMA_PATH}; - for stdout)",
    )
    schema.add_argument("--check", action="store_true", help="fail when the file is stale")
    schema.set_defaults(fn=cmd_schema)

    facts = sub.add_parser("facts", help="list the facts a rule condition may use")
    facts.set_defaults(fn=cmd_facts)
    insight_commands.register(sub)

    from tuner.cli import profiling

    profiling.register(sub)  # profile, traces, topology

    add_simulate_parser(sub)
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
