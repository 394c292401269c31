"""A soak of the daemon on a virtual clock with churning functions, measuring its memory.

Shared by the soak test and ``bench/bench_soak.py``: functions come and go, their windows
are drawn at random from healthy, out-of-memory, timing-out and failing shapes, and the
daemon's Python heap (tracemalloc), RSS and durable state are measured as cycles go by.
"""

from __future__ import annotations

import gc
import random
import sys
import tracemalloc
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil

from tests.fakes import FakeClock, FakeProvider
from tests.safety.harness import healthy, make_daemon
from tuner.daemon.loop import Daemon
from tuner.decisions.guard import GuardPolicy
from tuner.domain.model import FunctionConfig, FunctionRef, WindowFacts
from tuner.store.audit import SqliteStore

WINDOW_S = 600.0
"""Ten-minute windows: 144 cycles per simulated day."""
CYCLES_PER_DAY = int(86_400 / WINDOW_S)


def _shape(rng: random.Random, ref: FunctionRef) -> WindowFacts:
    kind = rng.choices(["healthy", "oom", "timeout", "failing", "quiet"], [6, 2, 1, 1, 1])[0]
    if kind == "oom":
        return healthy(ref, ooms=3, errors=3, peak_memory_mb=rng.uniform(200, 900))
    if kind == "timeout":
        return healthy(ref, timeouts=4, errors=4, duration_p99_ms=29_500.0)
    if kind == "failing":
        return healthy(ref, errors=rng.randint(30, 60))
    if kind == "quiet":
        return healthy(ref, invocations=0)
    return healthy(ref, peak_memory_mb=rng.uniform(20, 120))


@dataclass
class Sample:
    """The daemon's footprint after a number of cycles."""

    cycle: int
    blocks: int
    """Memory blocks the interpreter holds (``sys.getallocatedblocks``)."""
    heap_bytes: int
    """Python heap traced by tracemalloc; 0 when it is not tracing."""
    rss_bytes: int
    streaks: int
    state_keys: int
    open_intents: int


@dataclass
class Soak:
    """A daemon over a churning fleet; ``run`` advances it and samples its footprint."""

    store_path: Path
    live: int = 20
    churn_every: int = 6
    seed: int = 7
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.clock = FakeClock()
        self.provider = FakeProvider(name="soak")
        self.store = SqliteStore(self.store_path)
        policy = GuardPolicy(max_changes_per_function_per_day=20)
        self.daemon: Daemon = make_daemon(
            [self.provider], self.store, self.clock, guard_policy=policy
        )
        self.daemon.settings = replace(self.daemon.settings, window_s=WINDOW_S)
        self.born = 0
        self.cycles = 0
        self.applied = 0
        for _ in range(self.live):
            self._add()

    def _add(self) -> None:
        self.born += 1
        config = FunctionConfig(memory_mb=256, timeout_s=30, batch_size=1000)
        self.provider.add(f"fn-{self.born}", config)

    def _churn(self) -> None:
        """Two functions go away, two new ones arrive."""
        for name in self.rng.sample(sorted(self.provider.configs), 2):
            del self.provider.configs[name]
            self.provider.windows.pop(name, None)
            self.provider.labels.pop(name, None)
        self._add()
        self._add()

    def run(self, cycles: int) -> None:
        """Run ``cycles`` cycles, one window apart."""
        for _ in range(cycles):
            self.cycles += 1
            if self.cycles % self.churn_every == 0:
                self._churn()
            for name in self.provider.configs:
                self.provider.windows[name] = _shape(self.rng, self.provider.ref(name))
            report = self.daemon.run_cycle()
            assert report.errors == [], report.errors
            self.applied += len(self.provider.applied)
            self.provider.applied.clear()  # the fake's own record would look like a leak
            self.clock.advance(WINDOW_S)

    def sample(self) -> Sample:
        """Measure the footprint now."""
        gc.collect()
        heap, _ = tracemalloc.get_traced_memory()
        db = self.store._db  # noqa: SLF001 - counting rows of the test's own store
        with self.store._lock:  # noqa: SLF001
            keys = db.execute("SELECT count(*) FROM state").fetchone()[0]
        sample = Sample(
            self.cycles,
            sys.getallocatedblocks(),
            heap,
            psutil.Process().memory_info().rss,
            len(self.daemon.streaks.counts),
            keys,
            len(self.store.open_intents()),
        )
        self.samples.append(sample)
        return sample

    def close(self) -> None:
        """Close the store."""
        self.store.close()
