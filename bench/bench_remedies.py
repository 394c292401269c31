"""What a handover link and a split cost, against the same work done in one invocation.

Run: ``python -m bench.bench_remedies [--quick]``.  On the local host, for real:

* handover: a job of fixed steps (each a short wait, as I/O is), run once with a timeout
  long enough, then as a chain of links under a short timeout; the chain's extra wall
  time over the one invocation, per hand-over, and the gap between one link's end and the
  next one's start (the host's queue: a SQLite write, the runner's pick-up, a worker);
  the peak memory of a link against the one invocation's.
* split: a payload held in memory page by page, run unsplit at a memory size where it
  fits, then in parts at a quarter of it; the wall time of each, the peak of the largest
  invocation, and the sum of every invocation's peak (the parts and the one that split
  and merged) against the unsplit peak.

Figures are medians over the runs; the machine's load (``/proc/loadavg``) is printed first.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from tuner.daemon.logs import configure
from tuner.providers.local.chain_store import Chain
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.recording import InvocationRecord

JOB = (
    "memory_mb: 128\ntimeout_s: 60\nchain: {max_links: 100}\n",
    "import time\n"
    "from tuner_handler import handover\n\n"
    "@handover\n"
    "def handler(event, context):\n"
    "    context.state.setdefault('done', 0)\n"
    "    for _ in context.each(range(event['steps'])):\n"
    "        time.sleep(event['step_s'])\n"
    "        context.state['done'] += 1\n"
    "    return context.state['done']\n",
)
PAGES = (
    "memory_mb: 512\ntimeout_s: 60\n",
    "from tuner_handler import split\n\n"
    "@split('pages')\n"
    "def handler(event, context):\n"
    "    held = [bytes([p % 251]) * (event['mb'] * 1024 * 1024) for p in event['pages']]\n"
    "    return {'pages': len(held), 'bytes': sum(len(b) for b in held)}\n",
)


class WallClock:
    """The real time."""

    def now(self) -> float:
        """POSIX seconds."""
        return time.time()


def write(root: Path) -> Path:
    """The two benchmark functions in a functions directory."""
    for name, (declaration, source) in {"job": JOB, "pages": PAGES}.items():
        folder = root / "functions" / name
        folder.mkdir(parents=True)
        (folder / "function.yaml").write_text(declaration)
        (folder / "handler.py").write_text(source)
    return root


def _deploy(host: FunctionHost, name: str, **knobs: float) -> None:
    host.deploy(name, replace(host.config(name), **knobs))


def _since(host: FunctionHost, name: str, start: float) -> list[InvocationRecord]:
    return host.records.invocations([name], start, time.time() + 1)


def _chain(host: FunctionHost, chain_id: str) -> Chain:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        chain = host.decomposition.store.chain(chain_id)
        if chain is not None and chain.status != "running":
            return chain
        time.sleep(0.02)
    raise RuntimeError(f"chain {chain_id} did not end")


def bench_handover(
    host: FunctionHost, runs: int, steps: int, step_s: float, timeout_s: float
) -> None:
    """One invocation of the job against the same job as a chain."""
    event = {"steps": steps, "step_s": step_s}
    whole_ms, whole_peak, chain_ms, gaps, link_peak, links = [], [], [], [], [], []
    for _ in range(runs):
        _deploy(host, "job", timeout_s=60.0, handover_s=0.0)
        host.invoke("job", event)  # a warm worker at this configuration
        started = time.time()
        one = host.invoke("job", event)
        assert one.outcome == "ok" and one.result == steps, one
        whole_ms.append(one.duration_ms)
        whole_peak.append(max(r.peak_memory_mb or 0 for r in _since(host, "job", started)))

        _deploy(host, "job", timeout_s=timeout_s, handover_s=0.1)
        host.invoke("job", {"steps": 1, "step_s": 0.0})  # warm
        started, clock = time.time(), time.perf_counter()
        first = host.invoke("job", event)
        chain = _chain(host, first.result["handed_over"]["chain"])
        chain_ms.append((time.perf_counter() - clock) * 1000)
        assert chain.status == "done" and chain.result == steps, chain
        records = sorted(_since(host, "job", started), key=lambda r: r.start)
        gaps += [(b.start - a.end) * 1000 for a, b in zip(records, records[1:], strict=False)]
        link_peak.append(max(r.peak_memory_mb or 0 for r in records))
        links.append(chain.links)
    median = statistics.median
    work_ms = steps * step_s * 1000
    extra = median(chain_ms) - median(whole_ms)
    hand_overs = median(links) - 1
    print(
        f"handover: {steps} steps of {step_s * 1000:.0f} ms ({work_ms:.0f} ms of work), timeout {timeout_s:g} s, margin 0.1 s"
    )
    print(
        f"  one invocation            {median(whole_ms):8.0f} ms   peak {median(whole_peak):6.1f} MB"
    )
    print(
        f"  chain of {median(links):.0f} links         {median(chain_ms):8.0f} ms   peak {median(link_peak):6.1f} MB (largest link)"
    )
    print(
        f"  extra per hand-over       {extra / hand_overs:8.0f} ms   (a link ends at its margin, the next starts at once)"
    )
    print(
        f"  gap between links         {median(gaps):8.1f} ms   median, max {max(gaps):.1f} ms (the queue's write to the next start)"
    )


def bench_split(host: FunctionHost, runs: int, pages: int, mb: int, parts: int) -> None:
    """The payload in one invocation at a size where it fits, against ``parts`` parts."""
    event = {"pages": list(range(pages)), "mb": mb}
    need = pages * mb
    rows: dict[str, list[float]] = {
        k: [] for k in ("one_ms", "one_peak", "split_ms", "part_peak", "sum_peak")
    }
    for _ in range(runs):
        _deploy(host, "pages", memory_mb=need + 64, fan_out=1)
        host.invoke("pages", {"pages": [0], "mb": 1})  # warm
        started = time.time()
        one = host.invoke("pages", event)
        assert one.outcome == "ok", one
        rows["one_ms"].append(one.duration_ms)
        rows["one_peak"].append(max(r.peak_memory_mb or 0 for r in _since(host, "pages", started)))

        _deploy(host, "pages", memory_mb=need // parts + 64, fan_out=parts)
        host.invoke("pages", event)  # warm workers for the parts
        started = time.time()
        merged = host.invoke("pages", event)
        assert merged.outcome == "ok" and merged.result == one.result, merged
        rows["split_ms"].append(merged.duration_ms)
        records = _since(host, "pages", started)
        rows["part_peak"].append(max(r.peak_memory_mb or 0 for r in records))
        rows["sum_peak"].append(sum(r.peak_memory_mb or 0 for r in records))
    m = {k: statistics.median(v) for k, v in rows.items()}
    print(f"split: {pages} pages of {mb} MB ({need} MB held), into {parts} parts")
    print(f"  one invocation            {m['one_ms']:8.0f} ms   peak {m['one_peak']:6.1f} MB")
    print(
        f"  {parts} parts + the splitter   {m['split_ms']:8.0f} ms   peak {m['part_peak']:6.1f} MB (largest invocation)"
    )
    print(
        f"  memory of all invocations {m['sum_peak']:8.1f} MB against {m['one_peak']:.1f} MB (the splitter and each part hold a runtime)"
    )
    print(f"  time over one invocation  {m['split_ms'] - m['one_ms']:+8.0f} ms")


def main() -> None:
    """Run both, quickly or in full."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small run of each")
    args = parser.parse_args()
    configure("console", "warning")
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]} (2 cores)")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        host = FunctionHost(
            write(root / "app"), root / "state", WallClock(), max_workers_per_function=6
        )
        host.start()
        try:
            if args.quick:
                bench_handover(host, runs=1, steps=12, step_s=0.05, timeout_s=0.4)
                bench_split(host, runs=1, pages=8, mb=4, parts=4)
            else:
                bench_handover(host, runs=5, steps=60, step_s=0.05, timeout_s=1.0)
                bench_split(host, runs=5, pages=40, mb=8, parts=4)
        finally:
            host.close()


if __name__ == "__main__":
    main()
