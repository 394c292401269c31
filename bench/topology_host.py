"""The topology of random applications run for real on the local host.

A small application from :mod:`topology_apps` becomes real handlers (``time.sleep`` for
the work, ``context.invoke`` and ``context.dependency(...).get`` for the calls, with the
same chances and repeats) and a ``dependencies.yaml`` of stubs with the same latencies.
The host's traffic driver sends it Poisson arrivals, then the same plus a shared
schedule for two of its functions (they fire together every second), and the edges the
host's records give (``tuner topology --source timing``) are scored against the truth.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

from topology_apps import App, generate

from tuner.daemon.logs import configure
from tuner.providers.local.dependency_share import host_topology
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.specs import TrafficSpec
from tuner.providers.local.traffic import TrafficDriver

SEEDS = (3, 7)
"""The applications run (the first only, with Poisson traffic only, with ``--quick``)."""


class WallClock:
    """The real time."""

    def now(self) -> float:
        """POSIX seconds."""
        return time.time()


def small(seed: int) -> App:
    """A random application small enough for the host: at most five functions."""
    rng = random.Random(seed)
    while True:
        app = generate(rng, "poisson")
        if len(app.functions) <= 5 and len(app.rates) >= 2 and app.function_edges():
            return app


def handler_source(app: App, name: str) -> str:
    """The handler of one function: its work, and its calls with their chances."""
    function = app.functions[name]
    lines = [
        "import random",
        "import time",
        "",
        "",
        "def handler(event, context):",
        f"    work = {function.work_ms / 1000!r} * random.lognormvariate(0.0, {function.spread!r})",
        f"    parts = {len(function.calls) + 1}",
    ]
    for call in function.calls:
        lines.append("    time.sleep(work / parts)")
        lines.append(f"    if random.random() < {call.chance!r}:")
        lines.append(f"        for _ in range({call.repeat}):")
        if call.target in app.functions:
            lines.append(f"            context.invoke({call.target!r}, {{}})")
        else:
            lines.append(f"            context.dependency({call.target!r}).get('/')")
    lines += ["    time.sleep(work / parts)", "    return {}", ""]
    return "\n".join(lines)


def write_app(app: App, root: Path) -> Path:
    """The application as a functions directory."""
    for name in app.functions:
        folder = root / "functions" / name
        folder.mkdir(parents=True)
        (folder / "handler.py").write_text(handler_source(app, name))
        (folder / "function.yaml").write_text("memory_mb: 128\ntimeout_s: 10\n")
    (root / "dependencies.yaml").write_text(
        "".join(
            f"{name}: {{latency_ms: {latency:.2f}, jitter_ms: {latency / 5:.2f}}}\n"
            for name, latency in app.dependencies.items()
        )
    )
    return root


def traffic(app: App, scheduled: bool) -> dict[str, TrafficSpec]:
    """Each function's own traffic; with ``scheduled``, two fire together every second."""
    together = sorted(app.rates)[:2] if scheduled else []
    return {
        name: TrafficSpec(rate_per_s=rate, schedule={"second": "*"} if name in together else None)
        for name, rate in app.rates.items()
    }


def run_one(app: App, scheduled: bool, seconds: float, seed: int) -> dict[str, Any]:
    """Run the application for ``seconds`` and score the edges its records give."""
    with tempfile.TemporaryDirectory() as folder:
        root = write_app(app, Path(folder) / "app")
        host = FunctionHost(root, Path(folder) / "state", WallClock(), max_workers_per_function=16)
        host.start()
        try:
            driver = TrafficDriver(host, traffic(app, scheduled), seed=seed)
            driver.start()
            time.sleep(seconds)
            driver.stop()
            names = sorted(app.functions)
            invocations = host.records.invocations(names, 0.0, time.time() + 1)
            calls = host.records.dependency_calls(names, 0.0, time.time() + 1)
        finally:
            host.close()
    topology = host_topology(invocations, calls)
    drawn = {(e.source, e.target) for e in topology.edges}
    timing = {(e.source, e.target) for e in topology.edges if e.evidence == "timing"}
    true_timing = app.function_edges()
    return {
        "traffic": "poisson + schedule" if scheduled else "poisson",
        "invocations": len(invocations),
        "timing_edges": len(timing),
        "false_edges": sorted(drawn - app.truth),
        "timing_recall": len(timing & true_timing) / len(true_timing) if true_timing else 1.0,
        "missed_dependency_edges": sorted(e for e in app.truth - drawn if e[1] in app.dependencies),
    }


def run_host(quick: bool) -> list[dict[str, Any]]:
    """Each application under both kinds of traffic; with ``quick``, the first application
    for 20 s of Poisson traffic.

    The shared schedule is left to the full run: in 20 s its functions fire together only
    20 times, too few to refute the co-firing every time (one such run in about twenty
    drew a false edge).
    """
    configure("console", "warning")
    seconds = 20.0 if quick else 120.0
    rows = []
    for seed in SEEDS[:1] if quick else SEEDS:
        app = small(seed)
        for scheduled in (False,) if quick else (False, True):
            rows.append({"seed": seed} | run_one(app, scheduled, seconds, seed))
    return rows


def print_host(rows: list[dict[str, Any]]) -> bool:
    """Print the host runs; whether none drew a false edge or missed a recorded call."""
    print("\nlocal host, for real (edges from the host's records and timing):")
    print(
        f"{'app':>4} {'traffic':19} {'invocations':>11} {'timing edges':>12} {'recall':>6}  false"
    )
    ok = True
    for row in rows:
        false = ", ".join(f"{a}->{b}" for a, b in row["false_edges"]) or "none"
        print(
            f"{row['seed']:4d} {row['traffic']:19} {row['invocations']:11d} "
            f"{row['timing_edges']:12d} {row['timing_recall']:6.2f}  {false}"
        )
        ok = ok and not row["false_edges"] and not row["missed_dependency_edges"]
    print(f"no false edge and every dependency call drawn: {'yes' if ok else 'NO'}")
    return ok
