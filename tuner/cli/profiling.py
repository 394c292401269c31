"""``tuner profile``, ``tuner traces`` and ``tuner topology``: what the traces show.

They read the traces and invocation records the local host keeps in its state folder
(``state_dir`` of the ``local`` provider in ``tuner.yaml``; ``.tuner`` by default).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tuner.cli.arguments import duration, output_file
from tuner.daemon.config import load_config
from tuner.domain.durations import parse_duration
from tuner.domain.errors import ConfigError, Problem
from tuner.domain.times import iso
from tuner.trace.folded import fold, hottest, render_folded
from tuner.trace.model import Trace
from tuner.trace.storing import TraceStore
from tuner.trace.topology import Topology

_FORMATS = {"svg": "svg", "folded": "folded", "speedscope": "speedscope.json"}
_UNITS = {"cpu": ("µs", "microseconds"), "wall": ("µs", "microseconds"), "memory": ("KB", "bytes")}


def _print(text: str = "") -> None:
    print(text, flush=True)


def state_dir(config_path: str | None) -> Path:
    """The local host's state folder named by the configuration (or the default)."""
    from tuner.providers.local import Settings

    config = load_config(config_path)
    for provider in config.providers:
        if provider.get("type", "local") == "local":
            settings = Settings.model_validate(provider)
            return settings.state_dir
    raise ConfigError(
        [Problem(config_path or "tuner.yaml", None, "no local provider: nothing is traced")]
    )


def _store(args: argparse.Namespace) -> TraceStore:
    return TraceStore(state_dir(args.config) / "traces")


def _since(args: argparse.Namespace) -> float | None:
    return time.time() - args.since if getattr(args, "since", None) else None


def _traces(args: argparse.Namespace) -> list[Trace]:
    store = _store(args)
    traces = store.traces(args.function, _since(args))
    if not traces:
        known = ", ".join(store.functions()) or "none"
        raise ConfigError(
            [
                Problem(
                    str(store.root),
                    None,
                    f"no traces of {args.function!r}"
                    + (f" in the last {args.since:g} s" if args.since else "")
                    + f" (functions with traces: {known}); set tracing: {{mode: full}} "
                    "in its function.yaml or run more invocations",
                )
            ]
        )
    return traces


# ---------------------------------------------------------------- profile


def cmd_profile(args: argparse.Namespace) -> int:
    """Write a function's profile and print its hottest paths."""
    from tuner.trace.flamegraph import render_svg
    from tuner.trace.speedscope import render_speedscope

    traces = _traces(args)
    folded = fold(traces, args.kind)
    if not folded:
        _print(f"the {len(traces)} traces of {args.function} hold no {args.kind} samples")
        return 1
    short, long = _UNITS[args.kind]
    output = Path(args.output or f"{args.function}.{args.kind}.{_FORMATS[args.format]}")
    title = f"{args.function}: {args.kind} over {len(traces)} traced invocations"
    if args.format == "svg":
        text = render_svg(
            folded, title=title, unit=short, palette="memory" if args.kind == "memory" else "cpu"
        )
    elif args.format == "speedscope":
        text = json.dumps(render_speedscope(folded, name=title, unit=long))
    else:
        text = render_folded(folded)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    output.write_text(text, encoding="utf-8")
    _print(f"{title}: wrote {output}")
    _print(hot_table(folded, short))
    return 0


def hot_table(folded: dict[str, int] | Any, unit: str, limit: int = 10) -> str:
    """The hottest paths: share, weight, the frame and its caller."""
    lines = [f"{'share':>6} {'self':>12}  path (innermost last)"]
    for path in hottest(folded, limit):
        frames = path.stack[1:] if len(path.stack) > 1 else path.stack
        shown = " > ".join(frames[-3:])
        if len(frames) > 3:
            shown = "... > " + shown
        lines.append(f"{path.share:6.1%} {path.weight:>9,} {unit:2}  {shown}")
    return "\n".join(lines)


# ---------------------------------------------------------------- traces


def cmd_traces(args: argparse.Namespace) -> int:
    """List a function's recent traces with their outcome (or export them)."""
    traces = _traces(args)
    if args.otlp_json:
        from tuner.trace.otel import write_json

        _print(f"wrote {write_json(traces, Path(args.otlp_json))}")
    if args.otlp:
        from tuner.trace.otel import export_http

        ok = export_http(traces, args.otlp)
        _print(f"{'sent' if ok else 'could not send'} {len(traces)} traces to {args.otlp}")
        if not ok:
            return 1
    if args.json:
        _print(json.dumps([t.as_json() for t in traces], indent=1))
        return 0
    _print(
        f"{'started':20} {'trace id':32} {'outcome':8} {'ms':>8} {'cpu ms':>7} {'peak MB':>8}  detail"
    )
    for t in traces:
        stamp = iso(t.start)
        peak = f"{t.memory.peak_mb:8.1f}" if t.memory else f"{'-':>8}"
        _print(
            f"{stamp:20} {t.trace_id:32} {t.outcome:8} {t.duration_ms:8.1f} {t.cpu_ms:7.1f} "
            f"{peak}  {_detail(t)}"
        )
    return 0


def _detail(trace: Trace) -> str:
    memory = trace.memory
    if memory is not None and memory.failed is not None:
        need = f", needed {memory.need_mb:.0f} MB" if memory.need_mb is not None else ""
        return f"MemoryError: {memory.failed.describe()}{need}"
    if trace.exception is not None:
        e = trace.exception
        return f"{e.type}: {e.message[:60]} at {e.file}:{e.line}"
    if not trace.complete and trace.where:
        last = trace.where[-1]
        return f"killed in {last.function} ({last.file}:{last.line})"
    calls = [s for s in trace.spans if s.kind != "function"]
    return f"{len(calls)} calls" if calls else ""


# ---------------------------------------------------------------- topology


def host_records(state: Path, since: float | None) -> tuple[Topology, Counter[str]]:
    """What the local host's records show (the dependency calls, the calls between functions
    that timing supports), and each function's invocations."""
    from tuner.providers.local.dependency_share import host_topology
    from tuner.providers.local.recording import Records

    path = state / "local.sqlite"
    if not path.is_file():
        return Topology((), ()), Counter()
    records = Records(path)
    try:
        names = sorted({d.function for d in records.deployments()})
        start, end = since or 0.0, time.time() + 1
        invocations = records.invocations(names, start, end)
        calls = records.dependency_calls(names, start, end)
    finally:
        records.close()
    return host_topology(invocations, calls), Counter(i.function for i in invocations)


REMOTE_SINCE = "1h"
"""How far back the timing of providers without a state folder is read by default."""


def provider_timing(config_path: str | None, start: float, end: float) -> list[Any]:
    """The timing topology of every configured provider that offers one (all but local).

    A provider offers one through an optional ``timing_topology(start, end)`` method.
    """
    from tuner.daemon.logs import configure
    from tuner.daemon.loop import SystemClock
    from tuner.daemon.wiring import provider_settings

    config = load_config(config_path)
    configure(config.log.format, "warning")  # logs on stderr: standard output is the graph
    found = []
    for module, settings in provider_settings(config):
        if settings.type == "local":
            continue
        provider = module.build(settings, clock=SystemClock())
        mine = getattr(provider, "timing_topology", None)
        if mine is None:
            print(f"provider {settings.name!r} offers no timing topology", file=sys.stderr)
            continue
        provider.start()
        try:
            found.append(mine(start, end))
        finally:
            provider.close()
    return found


def cmd_topology(args: argparse.Namespace) -> int:
    """Print or write the application's topology."""
    from tuner.trace.topology import (
        GraphvizMissingError,
        from_traces,
        merge,
        to_dot,
        to_svg,
    )

    config = load_config(args.config)
    since = _since(args)
    topology = Topology((), ())
    if any(p.get("type", "local") == "local" for p in config.providers):
        state = state_dir(args.config)
        traces = TraceStore(state / "traces").all_traces(since) if args.source != "timing" else []
        topology = from_traces(traces)
        if args.source != "traces":
            recorded, invocations = host_records(state, since)
            traced = Counter(t.function for t in traces)
            counts = {n: (traced[n], count) for n, count in invocations.items()}
            topology = merge(topology, recorded, counts)
    remote = [str(p.get("type")) for p in config.providers if p.get("type", "local") != "local"]
    if remote and args.source == "traces":
        hint = f"only the local host traces; for {', '.join(remote)}: --source timing"
        print(hint, file=sys.stderr)
    if remote and args.source != "traces":
        now = time.time()
        start = since if since is not None else now - parse_duration(REMOTE_SINCE)
        for mined in provider_timing(args.config, start, now):
            topology = merge(topology, mined)
    if args.format == "json":
        text = json.dumps(topology.as_json(), indent=2) + "\n"
    elif args.format == "dot":
        text = to_dot(topology)
    else:
        try:
            text = to_svg(topology)
        except GraphvizMissingError as error:
            print(error, file=sys.stderr)
            return 2
    if args.output and args.output != "-":
        Path(args.output).write_text(text, encoding="utf-8")
        _print(f"wrote {args.output}: {len(topology.nodes)} nodes, {len(topology.edges)} edges")
    else:
        sys.stdout.write(text)
    return 0


def register(sub: Any) -> None:
    """Add ``profile``, ``traces`` and ``topology`` to the ``tuner`` command's subparsers."""
    profile = sub.add_parser("profile", help="write a function's flame graph from its traces")
    profile.add_argument("function", help="a function's name or key")
    profile.add_argument(
        "-c", "--config", help="the configuration file (default: the embedded local host)"
    )
    profile.add_argument("--since", type=duration, help="only traces this recent, e.g. 10m")
    profile.add_argument(
        "--kind", choices=["cpu", "wall", "memory"], default="cpu", help="what the frames weigh"
    )
    profile.add_argument(
        "--format", choices=sorted(_FORMATS), default="svg", help="the file written (default svg)"
    )
    profile.add_argument(
        "-o", "--output", type=output_file, help="default: FUNCTION.KIND.svg (or .folded ...)"
    )
    profile.set_defaults(fn=cmd_profile)

    traces = sub.add_parser("traces", help="list a function's recent traces")
    traces.add_argument("function", help="a function's name or key")
    traces.add_argument(
        "-c", "--config", help="the configuration file (default: the embedded local host)"
    )
    traces.add_argument("--since", type=duration, help="only traces this recent, e.g. 10m")
    traces.add_argument("--json", action="store_true", help="one JSON record per trace")
    traces.add_argument(
        "--otlp-json", metavar="FILE", type=output_file, help="also write them as OTLP/JSON"
    )
    traces.add_argument("--otlp", metavar="URL", help="also send them to an OTLP/HTTP collector")
    traces.set_defaults(fn=cmd_traces)

    topology = sub.add_parser("topology", help="who calls whom: from traces, records and timing")
    topology.add_argument(
        "-c", "--config", help="the configuration file (default: the embedded local host)"
    )
    topology.add_argument(
        "--since",
        type=duration,
        help=f"only what happened this recently, e.g. 10m (AWS, Kubernetes: {REMOTE_SINCE})",
    )
    topology.add_argument(
        "--source",
        choices=["auto", "traces", "timing"],
        default="auto",
        help="auto: traces where there are any, the host's records and timing where traces "
        "cannot speak; traces: only traces; timing: only records and timing",
    )
    topology.add_argument(
        "--format", choices=["json", "dot", "svg"], default="json", help="the output format"
    )
    topology.add_argument(
        "-o", "--output", type=output_file, help="write to this file (default: standard output)"
    )
    topology.set_defaults(fn=cmd_topology)
