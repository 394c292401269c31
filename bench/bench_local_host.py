"""Overhead of the local function host per invocation, and how soon the demo shows problems.

Run: ``python bench/bench_local_host.py [--quick]``.  Prints plain figures:

* warm round trip of a no-op handler (host -> worker pipe -> host, recorded in SQLite),
* cold start (a new worker process: interpreter start, handler import, memory cap),
* the same warm round trip through the HTTP endpoint,
* seconds from the start of the demo traffic until each demo problem is first recorded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from tuner.daemon.logs import configure
from tuner.providers.local import Settings, build
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.http_api import EndpointLimits
from tuner.providers.local.provider import LocalProvider

WARM_RUNS = 300
COLD_RUNS = 20
DEMO_SECONDS = 12.0
UNLIMITED = EndpointLimits(invoke_rate_per_s=1e9, invoke_burst=10**9)
"""The benchmark measures overhead, not the endpoint's rate limit."""


class WallClock:
    """The real time."""

    def now(self) -> float:
        """POSIX seconds."""
        return time.time()


def write_noop(directory: Path) -> Path:
    """A functions directory with one no-op function."""
    function_dir = directory / "functions" / "noop"
    function_dir.mkdir(parents=True)
    (function_dir / "function.yaml").write_text("memory_mb: 128\ntimeout_s: 5\n")
    (function_dir / "handler.py").write_text("def handler(event, context):\n    return event\n")
    return directory


def timed_ms(action: Callable[[], object], runs: int) -> list[float]:
    """Wall time of each run of ``action`` in milliseconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return times


def describe(label: str, times: list[float]) -> None:
    """Print median, p95 and max of a series."""
    ordered = sorted(times)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    print(
        f"{label:<44} median {statistics.median(times):7.2f} ms   p95 {p95:7.2f} ms"
        f"   max {max(times):7.2f} ms   (n={len(times)})"
    )


def bench_overhead(root: Path, warm_runs: int, cold_runs: int) -> None:
    """Warm and cold no-op invocations, directly and over HTTP."""
    host = FunctionHost(write_noop(root / "noop"), root / "noop-state", WallClock())
    provider = LocalProvider(
        host, WallClock(), http_port=0, traffic=False, endpoint_limits=UNLIMITED
    )
    with provider:
        host.invoke("noop", {})
        describe(
            "warm no-op invocation (direct)", timed_ms(lambda: host.invoke("noop", {}), warm_runs)
        )
        url = f"{provider.url}/functions/noop/invoke"
        headers = {"Authorization": f"Bearer {provider.token}"}

        def over_http() -> object:
            """One no-op invocation through the HTTP endpoint."""
            request = urllib.request.Request(url, data=b"{}", method="POST", headers=headers)
            with urllib.request.urlopen(request) as response:
                return json.loads(response.read())

        describe("warm no-op invocation (HTTP endpoint)", timed_ms(over_http, warm_runs))

        def cold() -> object:
            """Redeploy (draining the warm worker), then invoke on a new one."""
            host.deploy("noop", replace(host.config("noop")))  # drains the warm worker
            return host.invoke("noop", {})

        describe("cold no-op invocation (new worker)", timed_ms(cold, cold_runs))
        inits = [
            r.init_ms
            for r in host.records.invocations(["noop"], 0, time.time() + 1)
            if r.init_ms is not None
        ]
        describe("  of which worker start (init_ms)", inits)


def bench_demo(root: Path, seconds: float) -> None:
    """Seconds from the start of demo traffic until each problem is first recorded."""
    provider = build(Settings(state_dir=root / "demo-state", http_port=None), clock=WallClock())
    problems = {
        "report-builder oom": lambda r: r.function == "report-builder" and r.outcome == "oom",
        "ledger-sync timeout": lambda r: r.function == "ledger-sync" and r.outcome == "timeout",
        "price-lookup slow (>250 ms)": lambda r: (
            r.function == "price-lookup" and r.duration_ms > 250
        ),
        "checkout error": lambda r: r.function == "checkout" and r.outcome == "error",
        "refund-notifier error": lambda r: r.function == "refund-notifier" and r.outcome == "error",
        "greeter ok": lambda r: r.function == "greeter" and r.outcome == "ok",
    }
    start = time.time()
    with provider:
        time.sleep(seconds)
        records = provider.host.records.invocations(provider.host.functions(), start, time.time())
    print(f"demo traffic for {seconds:g} s: {len(records)} invocations recorded")
    for label, matches in problems.items():
        first = next((r.end - start for r in records if matches(r)), None)
        shown = "never" if first is None else f"{first:5.2f} s"
        print(f"  first {label:<32} after {shown}")


def main() -> None:
    """Run the benchmarks and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, a 5 s demo (CI)")
    args = parser.parse_args()
    configure("console", "warning")
    print(f"python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as directory:
        if args.quick:
            bench_overhead(Path(directory), warm_runs=50, cold_runs=5)
            bench_demo(Path(directory), seconds=5.0)
        else:
            bench_overhead(Path(directory), WARM_RUNS, COLD_RUNS)
            bench_demo(Path(directory), DEMO_SECONDS)


if __name__ == "__main__":
    main()
