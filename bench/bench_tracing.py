"""Benchmark of tracing overhead: per-invocation cost of tracing off / sample / full.

Runs the example application's functions on the real local host (warm workers) with no
tracer at all, then with tracing ``off``, ``sample`` (rate 0.1) and ``full``, and prints
the median per-invocation time and the overhead against no tracer.  ``resize`` is the
call-heavy one (nested Python calls on the CPU), ``index`` waits on its database.

It also measures, in this process, the candidate profilers on the same call-heavy code:
the tracer's own stack sampler, tracemalloc, pyinstrument and memray (those two when
installed), to show why the worker uses what it uses.

Targets: off costs nothing measurable (< 2%); sample <= 5%; full <= 2x on the call-heavy
function.  Timings on a shared machine are noisy, so a missed target only fails the run
with ``--strict``.  Run: ``python bench/bench_tracing.py [--quick] [--json FILE] [--strict]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tuner.providers.local.host import FunctionHost
from tuner.providers.local.trace_executor import Tracing
from tuner.providers.local.tracing_specs import TracingSpec

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "examples" / "app"
WIDTH, HEIGHT = 256, 192  # a photo-sized upload: ~50 ms of nested calls in resize
EVENTS: dict[str, Any] = {
    "resize": {
        "name": "b.jpg",
        "width": WIDTH,
        "height": HEIGHT,
        "pixels": [(x * 7 + y * 13) % 256 for y in range(HEIGHT) for x in range(WIDTH)],
    },
    "index": {"name": "b.jpg", "tags": ["sea", "sand"]},
}
MODES: dict[str, TracingSpec | None] = {
    "none": None,
    "off": TracingSpec(mode="off"),
    "sample": TracingSpec(mode="sample", sample_rate=0.1),
    "full": TracingSpec(mode="full"),
}
TARGETS = {"off": 1.02, "sample": 1.05, "full": 2.0}


class _Clock:
    def now(self) -> float:
        return time.time()


def host_overhead(rounds: int) -> dict[str, dict[str, float]]:
    """Median ms per invocation by function and mode, on the real host.

    One host per mode, all running at once, invoked in turn (round robin), so that the
    load of the machine drifts over every mode alike.
    """
    hosts: dict[str, FunctionHost] = {}
    with tempfile.TemporaryDirectory() as state:
        for mode, spec in MODES.items():
            folder = Path(state) / mode
            tracing = None if spec is None else Tracing(folder / "traces", spec, seed=1)
            hosts[mode] = FunctionHost(APP, folder, _Clock(), tracing=tracing)
            hosts[mode].start()
        try:
            durations: dict[str, dict[str, list[float]]] = {
                name: {mode: [] for mode in MODES} for name in EVENTS
            }
            for round_ in range(rounds + 3):
                for name in EVENTS:
                    for mode, host in hosts.items():
                        started = time.perf_counter()
                        result = host.invoke(name, EVENTS[name])
                        took = (time.perf_counter() - started) * 1000
                        assert result.outcome == "ok", result.error
                        if round_ >= 3:  # warm workers, first traced invocation done
                            durations[name][mode].append(took)
        finally:
            for host in hosts.values():
                host.close()
    return {
        name: {mode: statistics.median(values) for mode, values in by_mode.items()}
        for name, by_mode in durations.items()
    }


def _call_heavy(depth: int = 0) -> int:
    """Many small nested Python calls."""
    if depth == 6:
        return 1
    return sum(_call_heavy(depth + 1) for _ in range(4))


def _timed(run: Callable[[], None], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def library_overhead(repeat: int) -> dict[str, float | None]:
    """ms for one call-heavy run under each candidate profiler (None: not installed)."""
    spec = importlib.util.spec_from_file_location(
        "bench_tracer", ROOT / "tuner" / "providers" / "local" / "tracer.py"
    )
    assert spec is not None and spec.loader is not None
    tracer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tracer)
    work = lambda: [_call_heavy() for _ in range(20)]  # noqa: E731
    figures: dict[str, float | None] = {"none": _timed(work, repeat)}

    def sampled(memory: bool) -> Callable[[], None]:
        def run() -> None:
            sent: list[str] = []  # the messages a worker would send to the host
            options = {"memory": memory, "allocations": memory}
            t = tracer.InvocationTracer(options, str(ROOT), 1024, None, sent.append)
            t.start(0.0)
            work()
            t.finish(None, False)

        return run

    figures["tuner sampler (1 ms)"] = _timed(sampled(False), repeat)
    figures["tuner sampler + tracemalloc"] = _timed(sampled(True), repeat)

    def with_tracemalloc() -> None:
        tracemalloc.start(1)
        work()
        tracemalloc.stop()

    figures["tracemalloc alone"] = _timed(with_tracemalloc, repeat)
    figures["pyinstrument (1 ms)"] = None
    if importlib.util.find_spec("pyinstrument") is not None:
        from pyinstrument import Profiler

        def with_pyinstrument() -> None:
            profiler = Profiler(interval=0.001)
            profiler.start()
            work()
            profiler.stop()

        figures["pyinstrument (1 ms)"] = _timed(with_pyinstrument, repeat)
    figures["memray"] = None
    if importlib.util.find_spec("memray") is not None:
        import memray

        def with_memray() -> None:
            with tempfile.TemporaryDirectory() as folder, memray.Tracker(Path(folder) / "out.bin"):
                work()

        figures["memray"] = _timed(with_memray, repeat)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Print both tables; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer invocations")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    rounds = 10 if args.quick else 60
    figures = host_overhead(rounds)
    print(f"median per-invocation time on the local host ({rounds} warm invocations each)")
    print(f"{'function':10} " + " ".join(f"{m:>14}" for m in MODES))
    missed = []
    for name, by_mode in figures.items():
        cells = []
        for mode in MODES:
            ratio = by_mode[mode] / by_mode["none"]
            cells.append(f"{by_mode[mode]:7.1f} ms x{ratio:4.2f}")
            if name == "resize" and mode in TARGETS and ratio > TARGETS[mode]:
                missed.append(f"{name} {mode} x{ratio:.2f} > x{TARGETS[mode]}")
        print(f"{name:10} " + " ".join(f"{c:>14}" for c in cells))
    libraries = library_overhead(3 if args.quick else 10)
    base = libraries["none"] or 1.0
    print("\ncandidate profilers in-process, call-heavy code (best run)")
    for name, ms in libraries.items():
        shown = "not installed" if ms is None else f"{ms:8.1f} ms  x{ms / base:5.2f}"
        print(f"  {name:30} {shown}")
    targets = ", ".join(f"{m} <= x{t}" for m, t in TARGETS.items())
    print(
        f"targets on resize: {targets}: " + ("ok" if not missed else "MISSED " + "; ".join(missed))
    )
    if args.json:
        args.json.write_text(json.dumps({"host": figures, "libraries": libraries}, indent=2))
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
