"""Benchmark: memory sized from evidence for generated functions of six allocation shapes.

Generates functions that run out of memory (``bench/allocation_shapes.py``: a
``bytearray`` in a nested helper, a list grown by appending, a dict of strings, repeated
``bytes`` concatenation, a large ``str.join``, a list of lists), measures what each really
needs by running it once at the host's cap, then deploys them below that need on the local
host, for real, with steady traffic and the daemon on the bundled rules, and reads what
tuner did from its store and the host's records.  Functions run in rounds of one of each
shape, so that the host itself does not load the machine more than a small fleet would.

Per shape it prints how many were fixed in one step (one memory change, after which no
invocation at the new size ran out), how many first changes were blind (sized from no
probe or trace), and the first change as a multiple of the measured need.  Targets: at
least 95% fixed in one step, none over 2x the need, no first change blind (probes are
on).  ``--load`` runs a second process that keeps every core busy meanwhile.

Run: ``python -m bench.bench_sizing [--quick] [--rounds N] [--seed S] [--load]
[--tracing sample|full|off] [--json FILE]``; ``--quick`` (CI): one round.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench.allocation_shapes import SHAPES, Hog, generate, write
from bench.local_loop import local_daemon
from tuner.daemon.logs import configure
from tuner.daemon.loop import SystemClock
from tuner.daemon.scheduling import run_forever
from tuner.domain.decisions import Decision
from tuner.domain.model import Knob
from tuner.engine.sizing import oom_evidence, strongest
from tuner.providers.local import Settings
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.probing import ProbePolicy

SETTLED_OK = 3
"""Invocations that must succeed at a function's new size before it counts as settled."""
BLIND = "blind"
BURN = """
import hashlib, sys, threading

data = bytes(1 << 24)

def spin():
    while True:
        hashlib.sha256(data).digest()  # lets the GIL go: one core per thread

for _ in range(int(sys.argv[1]) - 1):
    threading.Thread(target=spin, daemon=True).start()
spin()
"""
"""One process that keeps every core busy: a thread per core, hashing."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What tuner did for one generated function."""

    name: str
    shape: str
    need_mb: float
    deployed_mb: int
    first_mb: int | None
    """The first memory change's new size (None: no change was applied)."""
    changes: int
    source: str
    """What the first change was sized from (``blind`` when nothing measured the need)."""
    summary: str
    ooms_after: int
    """Invocations that ran out of memory at the first change's size."""
    ok_after: int
    timeouts_after: int

    @property
    def one_step(self) -> bool:
        """One change, and nothing ran out of memory at its size."""
        return self.changes == 1 and self.ooms_after == 0 and self.ok_after > 0

    @property
    def ratio(self) -> float | None:
        """The first change's size as a multiple of the measured need."""
        return self.first_mb / self.need_mb if self.first_mb else None


def measure_needs(hogs: list[Hog], folder: Path) -> dict[str, float]:
    """What each function needs: its peak when run once at the host's cap, untraced."""
    roomy = [replace(h, memory_mb=4096) for h in hogs]
    write(roomy, folder / "roomy", rate_per_s=0.0, tracing="off")
    clock = SystemClock()
    off = ProbePolicy(enabled=False)
    host = FunctionHost(folder / "roomy", folder / "roomy-state", clock, probe=off)
    host.start()
    try:
        needs = {}
        for hog in roomy:
            result = host.invoke(hog.name, hog.event)
            if result.outcome != "ok":
                raise RuntimeError(f"{hog.name} fails at 4096 MB: {result.error}")
            peak = host.records.invocations([hog.name], 0, time.time() + 1)[-1].peak_memory_mb
            assert peak is not None
            needs[hog.name] = peak
        return needs
    finally:
        host.close()


def tune(
    hogs: list[Hog],
    needs: dict[str, float],
    folder: Path,
    *,
    interval_s: float = 5.0,
    limit_s: float = 240.0,
    rate_per_s: float = 0.4,
    tracing: str = "sample",
) -> list[Outcome]:
    """Run the daemon over the functions until each has settled or ``limit_s`` passed."""
    write(hogs, folder / "app", rate_per_s=rate_per_s, tracing=tracing)
    settings = Settings(functions_dir=folder / "app", state_dir=folder / "state", http_port=None)
    provider, store, daemon = local_daemon(settings, folder / "tuner.db", interval_s)
    stop = threading.Event()
    runner = threading.Thread(target=run_forever, args=(daemon, interval_s), kwargs={"stop": stop})
    provider.start()
    started = time.time()
    runner.start()
    try:
        while time.time() - started < limit_s and not _settled(provider.host, hogs):
            time.sleep(1.0)
    finally:
        stop.set()
        runner.join()
    try:
        decisions = store.decisions(limit=100_000)
        return [outcome(h, needs[h.name], decisions, provider.host) for h in hogs]
    finally:
        provider.close()
        store.close()


def _settled(host: FunctionHost, hogs: list[Hog]) -> bool:
    """Every function was resized and its latest size served enough invocations."""
    for hog in hogs:
        config = host.config(hog.name)
        if config.memory_mb == hog.memory_mb:
            return False
        records = host.records.invocations([hog.name], 0, time.time() + 1)
        latest = [r for r in records if str(r.revision) == config.revision]
        if sum(1 for r in latest if r.outcome == "ok") < SETTLED_OK:
            return False
    return True


def outcome(hog: Hog, need: float, decisions: list[Decision], host: FunctionHost) -> Outcome:
    """What tuner did for ``hog``, from its decisions and the host's records."""
    memory = [
        d
        for d in decisions
        if d.ref.name == hog.name
        and d.applied
        and d.change is not None
        and d.change.knob is Knob.MEMORY_MB
        and not d.undoes
    ]
    first = min(memory, key=lambda d: d.time) if memory else None
    if first is None or first.change is None:
        return Outcome(hog.name, hog.shape, need, hog.memory_mb, None, 0, "-", "", 0, 0, 0)
    chosen = strongest(oom_evidence(first.facts, first.change.before or hog.memory_mb))
    resized = [
        d.revision
        for d in host.records.deployments(hog.name)
        if d.before is not None and d.before.memory_mb != d.after.memory_mb
    ]
    records = host.records.invocations([hog.name], 0, time.time() + 1)
    at_first = [r for r in records if resized and r.revision == resized[0]]
    return Outcome(
        hog.name,
        hog.shape,
        need,
        hog.memory_mb,
        int(first.change.after),
        len(memory),
        str(chosen.source) if chosen is not None else BLIND,
        first.summary,
        sum(1 for r in at_first if r.outcome == "oom"),
        sum(1 for r in at_first if r.outcome == "ok"),
        sum(1 for r in at_first if r.outcome == "timeout"),
    )


@contextmanager
def burning(on: bool) -> Iterator[None]:
    """A second process that keeps every core busy while the block runs (when ``on``)."""
    if not on:
        yield
        return
    burner = subprocess.Popen([sys.executable, "-c", BURN, str(os.cpu_count() or 2)])
    try:
        yield
    finally:
        burner.terminate()
        burner.wait()


@dataclass(frozen=True, slots=True)
class Figures:
    """The outcomes of one shape (or of all): how many, how fixed, how sized."""

    functions: int
    one_step: int
    blind: int
    over_2x: int
    ratio_min: float | None
    ratio_max: float | None
    sources: dict[str, int]

    @classmethod
    def of(cls, outcomes: list[Outcome]) -> Figures:
        """The figures of some outcomes."""
        ratios = sorted(o.ratio for o in outcomes if o.ratio is not None)
        sources: dict[str, int] = {}
        for o in outcomes:
            sources[o.source] = sources.get(o.source, 0) + 1
        return cls(
            functions=len(outcomes),
            one_step=sum(o.one_step for o in outcomes),
            blind=sum(o.source == BLIND for o in outcomes),
            over_2x=sum(1 for r in ratios if r > 2.0),
            ratio_min=round(ratios[0], 2) if ratios else None,
            ratio_max=round(ratios[-1], 2) if ratios else None,
            sources=sources,
        )

    def line(self, label: str) -> str:
        """One line of the table."""
        span = f"{self.ratio_min}-{self.ratio_max}" if self.ratio_min is not None else "-"
        return (
            f"{label:16} {self.functions:>4} {self.one_step:>7} {self.blind:>6}"
            f" {self.over_2x:>4} {span:>11}  "
            + ", ".join(f"{name} {count}" for name, count in sorted(self.sources.items()))
        )


def figures(outcomes: list[Outcome]) -> dict[str, Figures]:
    """Per shape and in all: functions, fixed in one step, blind, the size over the need."""
    table = {shape: Figures.of([o for o in outcomes if o.shape == shape]) for shape in SHAPES}
    return {**table, "all": Figures.of(outcomes)}


def main() -> int:
    """Run the rounds, print every function and the figures per shape."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round (CI)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of one of each shape")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--load", action="store_true", help="burn every core meanwhile")
    parser.add_argument("--tracing", choices=("sample", "full", "off"), default="sample")
    parser.add_argument("--interval", type=float, default=5.0, help="the daemon's interval, s")
    parser.add_argument("--json", dest="json_file")
    args = parser.parse_args()
    configure("console", "warning")
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # cycles that ran long
    rng = random.Random(args.seed)
    outcomes: list[Outcome] = []
    started, before = time.time(), os.getloadavg()
    with burning(args.load):
        for index in range(1, 2 if args.quick else args.rounds + 1):
            hogs = generate(rng, per_shape=1, first=index)
            with tempfile.TemporaryDirectory() as tmp:
                needs = measure_needs(hogs, Path(tmp))
                outcomes += tune(
                    hogs, needs, Path(tmp), interval_s=args.interval, tracing=args.tracing
                )
        load = os.getloadavg()
    print(
        f"{len(outcomes)} functions, seed {args.seed}, tracing {args.tracing}, "
        f"interval {args.interval:g} s, {time.time() - started:.0f} s; load average "
        f"{before[0]:.2f} before, {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end"
        + (" (a second process burning every core)" if args.load else "")
    )
    for o in outcomes:
        ratio = f"x{o.ratio:.2f}" if o.ratio else "-"
        print(
            f"  {o.name:18} need {o.need_mb:4.0f} MB: {o.deployed_mb} -> {o.first_mb or '-'} MB"
            f" ({ratio}, from {o.source}); changes {o.changes}, at that size"
            f" {o.ooms_after} OOMs, {o.ok_after} ok, {o.timeouts_after} timeouts"
        )
    table = figures(outcomes)
    print(f"{'shape':16} {'fns':>4} {'1 step':>7} {'blind':>6} {'>2x':>4} {'x need':>11}  from")
    for label, row in table.items():
        print(row.line(label))
    total = table["all"]
    print(
        f"targets: >= 95% fixed in one step: {total.one_step / total.functions:.1%};"
        f" none over 2x the need: {total.over_2x} over; none blind: {total.blind} blind"
    )
    if args.json_file:
        payload = {
            "figures": {label: asdict(row) for label, row in table.items()},
            "functions": [asdict(o) for o in outcomes],
        }
        Path(args.json_file).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
