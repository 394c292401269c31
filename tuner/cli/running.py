"""``tuner run`` and ``tuner once``: the daemon, for a while or for one cycle."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from tuner.cli.arguments import CONFIG_HELP, address, command_config, duration, say
from tuner.cli.explaining import decision_line, summary_table
from tuner.daemon.addresses import DEFAULT_ADDRESS
from tuner.daemon.logs import configure
from tuner.decisions.documents import decision_json
from tuner.domain.errors import ConfigError, Problem
from tuner.domain.lifecycle import State
from tuner.store.audit import SqliteStore


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until stopped (or for ``--for``), then print a summary."""
    from tuner.daemon.reports import CycleReport
    from tuner.daemon.scheduling import EarlyCycles, run_forever
    from tuner.daemon.wiring import build

    config = command_config(args.config)
    if args.fresh:
        if args.config:
            raise ConfigError(
                [Problem(args.config, None, "--fresh only resets the embedded demo's state")]
            )
        from tuner.store.claiming import ensure_unheld

        ensure_unheld(config.store_path())  # never delete the store of a running daemon
        fresh_start(config.store_path().parent)
    if args.interval:
        config = config.model_copy(update={"interval": args.interval})
    configure(
        config.log.format if not args.verbose else "console", "debug" if args.verbose else "warning"
    )
    tuner = build(config)
    started = time.time()
    say(
        f"tuner: {len(tuner.rules.rules)} rules, {len(tuner.providers)} provider(s), mode {config.mode.value}, "
        f"a cycle every {config.interval:g} s, store {config.store_path()}"
    )
    from tuner.web.attaching import attach
    from tuner.web.controls import load_token

    try:
        # an address nobody chose may be taken: then the daemon runs without it
        chosen = hasattr(args, "http") or config.http is not None
        address = args.http if hasattr(args, "http") else config.http_address
        insight = attach(tuner, address, token=load_token(), required=chosen)
    except BaseException:
        tuner.close()
        raise
    if insight.url:
        say(f"tuner: dashboard and metrics at {insight.url}")
    cycles = 0

    def on_cycle(report: CycleReport) -> None:
        nonlocal cycles
        cycles += 1
        applied = [d for d in report.decisions if d.state is State.APPLIED]
        say(
            f"[{'early ' if report.early else ''}cycle {cycles} +{report.started - started:4.0f}s] "
            f"{report.targets} functions, "
            f"{report.findings} findings, {len(applied)} changes, {len(report.verified)} verified"
            + (f", {len(report.errors)} errors" if report.errors else "")
        )
        for d in applied:
            say(f"    changed  {d.ref.name}: {d.change.describe() if d.change else ''}  ({d.rule})")
        for d in report.verified:
            say(
                f"    verified {d.ref.name}: {d.change.describe() if d.change else ''} -> {d.state.value}"
            )
        for d in report.decisions:
            if d.state is State.FAILED:
                say(f"    {d.state.value:8} {d.ref.name}: {d.summary} {d.reason}")

    try:
        tuner.start()
        for provider in tuner.providers:  # e.g. how to call the local invoke endpoint
            for note in getattr(provider, "start_notes", list)():
                say(note)
        run_forever(
            tuner.daemon,
            config.interval,
            duration_s=args.duration,
            on_cycle=on_cycle,
            before_cycle=tuner.rules.reload,
            early=EarlyCycles(config.early_gap_s) if config.early_gap_s else None,
        )
    finally:
        insight.close()
        last = {view.key: view.facts for view in insight.state.functions()}
        with contextlib.suppress(Exception):  # the last facts are a courtesy; the run is over
            tuner.store.remember_functions(time.time(), last)
        tuner.close()
    store = SqliteStore(config.store_path())
    try:
        say()
        say(summary_table(store.decisions(since=started, limit=100_000)))
    finally:
        store.close()
    return 0


def cmd_once(args: argparse.Namespace) -> int:
    """Run one cycle and print its decisions."""
    from tuner.daemon.wiring import build

    config = command_config(args.config)
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
        say(json.dumps([decision_json(d) for d in decisions], indent=2))
    else:
        for d in decisions:
            say(decision_line(d))
        if not decisions:
            say(f"no findings ({report.targets} functions observed)")
    return 1 if report.errors else 0


def fresh_start(folder: Path) -> None:
    """Clear the demo's state in ``folder``, keeping sub-folders that hold another store.

    The example application keeps its own store and traces in ``.tuner/app``, which the
    README's next steps read: a fresh demo leaves them.
    """
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            if not any(entry.rglob("tuner.db")):
                shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def register(sub: Any) -> None:
    """Add ``run`` and ``once`` to the ``tuner`` command's subparsers."""
    run = sub.add_parser("run", help="run the daemon (the embedded demo without -c)")
    run.add_argument("-c", "--config", help=CONFIG_HELP)
    run.add_argument(
        "--for", dest="duration", type=duration, help="stop after this long, e.g. 90s or 10m"
    )
    run.add_argument("--interval", type=duration, help="override the cycle interval, e.g. 10s")
    run.add_argument(
        "--fresh",
        action="store_true",
        help="embedded demo only: start from the shipped examples (clears the demo's .tuner/, "
        "not the example application's)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="log every step")
    run.add_argument(
        "--http",
        default=argparse.SUPPRESS,
        type=address,
        help="serve the dashboard and metrics at HOST:PORT, or off (default: the "
        f"configuration's http, else {DEFAULT_ADDRESS})",
    )
    run.set_defaults(fn=cmd_run)

    once = sub.add_parser("once", help="run one cycle and print its decisions")
    once.add_argument("-c", "--config", help=CONFIG_HELP)
    once.add_argument(
        "--json",
        action="store_true",
        help="print the decisions as JSON on stdout (messages go to stderr)",
    )
    once.set_defaults(fn=cmd_once)
