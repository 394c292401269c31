"""Kernel memory limits for workers where cgroup v1 is writable (skipped elsewhere)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from local_world import WallClock

from tuner.providers.local.cgroups import (
    CgroupLimits,
    CgroupMemoryLimit,
    memory_limits,
    remove_stale,
)
from tuner.providers.local.host import FunctionHost

LIMITS = memory_limits()
pytestmark = pytest.mark.skipif(LIMITS is None, reason="no writable cgroup v1 memory controller")


def test_a_process_over_its_cgroup_limit_is_killed_and_seen_as_exceeded() -> None:
    assert isinstance(LIMITS, CgroupLimits)
    limit = CgroupMemoryLimit(LIMITS.parent / f"tuner-test-{time.monotonic_ns()}", 40)
    hog = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(0.2); b = b'x' * (120 << 20)"]
    )
    try:
        limit.add(hog.pid)
        assert hog.wait(timeout=10) == -9
        assert limit.exceeded()
    finally:
        limit.remove()
    assert not limit.path.exists()


def test_workers_run_in_their_own_limited_cgroup(functions_dir: Path, state_dir: Path) -> None:
    host = FunctionHost(functions_dir, state_dir, WallClock(), memory_limits=LIMITS)
    host.start()
    try:
        assert host.invoke("hog", {"mb": 60}).outcome == "ok"
        [worker] = host.warm_workers("hog")
        cgroup_line = next(
            line
            for line in Path(f"/proc/{worker}/cgroup").read_text().splitlines()
            if ":memory:" in line
        )
        group = Path("/sys/fs/cgroup/memory") / cgroup_line.split(":", 2)[2].lstrip("/")
        assert group.name.startswith("tuner-")
        assert int((group / "memory.limit_in_bytes").read_text()) == (128 + 16) << 20
        assert host.invoke("hog", {"mb": 300}).outcome == "oom"  # the address-space cap first
    finally:
        host.close()
    assert not group.exists()


def test_empty_cgroups_of_processes_that_are_gone_are_removed() -> None:
    assert isinstance(LIMITS, CgroupLimits)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = LIMITS.parent / f"tuner-{gone.stdout.strip()}-1"
    mine = CgroupMemoryLimit(LIMITS.parent / f"tuner-{os.getpid()}-test", 64)
    stale.mkdir()
    try:
        assert remove_stale(LIMITS.parent) >= 1
        assert not stale.exists() and mine.path.exists()
    finally:
        mine.remove()
