"""Fusion on the local host: the p95 and cost it saves, against the estimate tuner printed.

Run: ``python -m bench.bench_fusion [--quick]``.  A pair with a known overhead:

* ``total`` calls the private function ``square`` eight times per invocation; ``square``
  does a few microseconds of work, so each call is mostly the hop through the host;
* ``total-inline`` does the same work with ``square``'s code in-process.

Three phases on one host (its state kept between them):

1. *before*, tracing off, tuner not running: ``total`` and ``total-inline`` alternately.
   The difference of their medians, per call, is the true overhead of a call through the
   host; ``total``'s p95 and the pair's memory-seconds per call are the baseline.
2. *tuner*: the daemon with the bundled rules, mode apply, traces a share of the same
   traffic, fuses ``square`` into ``total`` (the ``chatty-pair`` rule) and verifies it.
3. *after*, tracing off again, tuner stopped: the same traffic, ``square`` fused.

It prints the known overhead against tuner's (from traces); ``total``'s p95 before and
after against tuner's estimate; the pair's memory-seconds per call (the cost) before and
after against tuner's estimated saving.  The load (``uptime``) is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.local_loop import local_daemon
from tuner.daemon.logs import configure
from tuner.daemon.loop import SystemClock
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.model import Knob
from tuner.domain.stats import percentile
from tuner.engine.actions.shaping import (
    LAMBDA_PRICE_PER_REQUEST,
    FusionEstimate,
    fusion_estimate,
)
from tuner.engine.sizing import LAMBDA_PRICE_GB_S
from tuner.providers.local import Settings, build
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.tracing_specs import TracingSpec

CALLS = 8
MEMORY_MB = 128
SQUARE = """\
def square(value):
    \"\"\"A few microseconds of work: the callee's own time.\"\"\"
    total = 0
    for step in range(30):
        total += (value * step) % 7
    return value * value + total % 1


def handler(event, context):
    return square(event["value"])
"""
TOTAL = """\
def handler(event, context):
    return sum(context.invoke("square", {"value": v}) for v in range(event["calls"]))
"""
INLINE = SQUARE.replace('def handler(event, context):\n    return square(event["value"])\n', "")
INLINE += """

def handler(event, context):
    return sum(square(v) for v in range(event["calls"]))
"""
DECLARATION = f"memory_mb: {MEMORY_MB}\ntimeout_s: 5\n"
MINUTES_PER_MONTH = 30 * 24 * 60


def write_pair(root: Path) -> Path:
    """The functions folder: total -> square, and total-inline."""
    for name, code in (("square", SQUARE), ("total", TOTAL), ("total-inline", INLINE)):
        folder = root / "functions" / name
        folder.mkdir(parents=True)
        (folder / "function.yaml").write_text(DECLARATION)
        (folder / "handler.py").write_text(code)
    return root


def drive(host: FunctionHost, rate_per_s: float, stop: threading.Event) -> None:
    """Invoke total and total-inline alternately, ``rate_per_s`` each, until ``stop``."""
    event = {"calls": CALLS}
    while not stop.is_set():
        started = time.monotonic()
        assert host.invoke("total", event).result == host.invoke("total-inline", event).result
        stop.wait(max(0.0, 1 / rate_per_s - (time.monotonic() - started)))


@dataclass(frozen=True)
class Measure:
    """The pair without tracing or tuner: durations and the pair's billed time per call."""

    total: list[float]
    inline: list[float]
    mb_s_per_call: float

    @property
    def overhead_ms(self) -> float:
        """Per call to square: total's median less total-inline's, over the calls."""
        return (statistics.median(self.total) - statistics.median(self.inline)) / CALLS

    @property
    def p95(self) -> float:
        """total's p95, in ms."""
        return percentile(self.total, 95) or 0.0


def measure(settings: Settings, rounds: int) -> Measure:
    """Run ``rounds`` of total and total-inline on the host without tracing (warm first)."""
    untraced = settings.model_copy(update={"tracing": TracingSpec(mode="off")})
    with build(untraced, clock=SystemClock()) as provider:
        host = provider.host
        event = {"calls": CALLS}
        for _ in range(5):  # warm workers: no start in the figures
            host.invoke("total", event)
            host.invoke("total-inline", event)
        started = time.time()
        for _ in range(rounds):
            assert host.invoke("total", event).result == host.invoke("total-inline", event).result
        records = host.records.invocations(["total", "total-inline", "square"], started, 1e12)
        billed = ("total",) if host.config("square").fused else ("total", "square")
    return Measure(
        total=[r.duration_ms for r in records if r.function == "total"],
        inline=[r.duration_ms for r in records if r.function == "total-inline"],
        mb_s_per_call=sum(r.duration_ms for r in records if r.function in billed)
        / 1000
        * MEMORY_MB
        / (rounds * CALLS),
    )


def tune(settings: Settings, store_path: Path, interval_s: float, most_s: float) -> Decision | None:
    """Run the daemon over the traced pair until the fusion is judged; the fusion, if any."""
    provider, store, daemon = local_daemon(settings, store_path, interval_s)
    stop = threading.Event()
    started = time.time()
    fusion = None
    with provider:
        driver = threading.Thread(target=drive, args=(provider.host, 5.0, stop), daemon=True)
        driver.start()
        try:
            while time.time() - started < most_s:
                time.sleep(interval_s)
                daemon.run_cycle()
                fusion = next(
                    (
                        d
                        for d in store.decisions(limit=100)
                        if d.change and d.change.knob is Knob.FUSED and d.applied
                    ),
                    None,
                )
                if fusion is not None and fusion.state not in (State.APPLIED, State.APPLYING):
                    break
        finally:
            stop.set()
            driver.join()
            store.close()
    return fusion


def report(before: Measure, after: Measure, fusion: Decision, estimate: FusionEstimate) -> None:
    """Print the measured figures against tuner's estimate."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average (uptime): {load}")
    print(f"tuner printed: {fusion.summary}")
    print(f"verdict: {fusion.state.value}")
    print(
        f"overhead per call: known {before.overhead_ms:.2f} ms (untraced medians, total against"
        f" total-inline), tuner's estimate {estimate.overhead_ms:.2f} ms (from traces)"
    )
    print(
        f"total p95 untraced: {before.p95:.2f} -> {after.p95:.2f} ms measured"
        f" (saved {before.p95 - after.p95:.2f} ms, {CALLS} calls); tuner's estimate"
        f" {estimate.caller_p95_ms or 0:.2f} -> {estimate.caller_p95_after_ms or 0:.2f} ms"
        f" (saved {(estimate.caller_p95_ms or 0) - (estimate.caller_p95_after_ms or 0):.2f} ms,"
        " on its traced window)"
    )
    saved = before.mb_s_per_call - after.mb_s_per_call
    print(
        f"pair cost: {before.mb_s_per_call * 1000:.1f} -> {after.mb_s_per_call * 1000:.1f}"
        f" MB-ms per call measured (saved {saved * 1000:.1f});"
        f" tuner's estimate saved {estimate.mb_s_per_call_saved * 1000:.1f}"
    )
    calls = estimate.calls_per_min
    month = (saved / 1024 * LAMBDA_PRICE_GB_S + LAMBDA_PRICE_PER_REQUEST) * calls
    print(
        f"at {calls:,.0f} calls/min and Lambda's prices: ${month * MINUTES_PER_MONTH:,.2f}/month"
        f" measured, ${estimate.dollars_per_month:,.2f}/month estimated (requests included)"
    )


def run(root: Path, rounds: int, interval_s: float, most_s: float) -> None:
    """Measure the pair, let tuner fuse it, measure it again, and print the figures."""
    settings = Settings(
        functions_dir=write_pair(root / "pair"),
        state_dir=root / "state",
        http_port=None,
        traffic=False,
        tracing=TracingSpec(mode="sample", sample_rate=0.3),
    )
    before = measure(settings, rounds)
    fusion = tune(settings, root / "tuner.db", interval_s, most_s)
    if fusion is None:
        print(f"no fusion within {most_s:g} s: nothing to compare (is the machine very busy?)")
        return
    after = measure(settings, rounds)
    estimate = fusion_estimate(fusion.facts, MEMORY_MB)
    assert estimate is not None, "a fusion is planned from its estimate"
    report(before, after, fusion, estimate)
    print(
        f"rounds: {rounds} of total and total-inline before and after; cycles every {interval_s:g} s"
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, 2 s cycles (CI)")
    quick = parser.parse_args().quick
    rounds, interval_s, most_s = (100, 2.0, 40.0) if quick else (1000, 10.0, 180.0)
    configure("console", "warning")
    print(f"python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as directory:
        run(Path(directory), rounds, interval_s, most_s)


if __name__ == "__main__":
    main()
