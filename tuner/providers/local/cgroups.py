"""Kernel memory limits for workers: a cgroup v1 child per worker, where one can be made.

The address-space cap set inside each worker is the portable limit and turns an
over-allocation into MemoryError.  Where the cgroup v1 memory controller is writable
(root on a v1 host), each worker additionally runs in a child of tuner's own memory
cgroup with a hard limit a little above its memory size, so even memory the cap cannot
see (child processes of a handler) is bounded; the kernel then kills the worker.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path

import structlog

from tuner.providers.local.workers import LimitFactory, MemoryLimit, WorkerSpec

log = structlog.get_logger(__name__)

_V1_ROOT = Path("/sys/fs/cgroup/memory")
_HEADROOM_MB = 16
"""Above the worker's memory size: page cache and kernel memory the cap does not count."""


class CgroupMemoryLimit:
    """One worker's cgroup: created with its limit, removed when the worker ended."""

    def __init__(self, path: Path, limit_mb: int) -> None:
        self.path = path
        path.mkdir()
        (path / "memory.limit_in_bytes").write_text(str(limit_mb * 1024 * 1024))
        swap_limit = path / "memory.memsw.limit_in_bytes"
        if swap_limit.exists():
            with contextlib.suppress(OSError):  # swap accounting off: memory alone applies
                swap_limit.write_text(str(limit_mb * 1024 * 1024))

    def add(self, pid: int) -> None:
        """Move the process into the cgroup."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def exceeded(self) -> bool:
        """True when the kernel's OOM killer acted in this cgroup."""
        try:
            control = (self.path / "memory.oom_control").read_text()
        except OSError:
            return False
        for line in control.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and int(value) > 0:
                return True
        return False

    def remove(self) -> None:
        """Remove the (now empty) cgroup."""
        try:
            self.path.rmdir()
        except OSError as error:
            log.debug("cgroup not removed", path=str(self.path), error=str(error))


class CgroupLimits:
    """Makes a :class:`CgroupMemoryLimit` per worker under tuner's own memory cgroup."""

    def __init__(self, parent: Path) -> None:
        self.parent = parent
        self._serial = itertools.count(1)

    def __call__(self, spec: WorkerSpec) -> MemoryLimit | None:
        """A limit for a worker of ``spec``; None when the cgroup cannot be made."""
        path = self.parent / f"tuner-{os.getpid()}-{next(self._serial)}"
        try:
            return CgroupMemoryLimit(path, spec.memory_mb + _HEADROOM_MB)
        except OSError as error:
            log.debug("no cgroup for worker", function=spec.function, error=str(error))
            return None


def own_memory_cgroup(root: Path = _V1_ROOT) -> Path | None:
    """The directory of this process's cgroup v1 memory group, when mounted."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, relative = line.split(":", 2)
        if "memory" in controllers.split(","):
            path = root / relative.lstrip("/")
            return path if path.is_dir() else None
    return None


def memory_limits(root: Path = _V1_ROOT) -> LimitFactory | None:
    """Per-worker cgroup limits when cgroup v1 memory is writable here, else None."""
    parent = own_memory_cgroup(root)
    if parent is None:
        return None
    probe = parent / f"tuner-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        log.info("cgroup memory limits unavailable; using the address-space cap only")
        return None
    removed = remove_stale(parent)
    log.info("cgroup v1 memory limits enabled", parent=str(parent), stale_removed=removed)
    return CgroupLimits(parent)


def remove_stale(parent: Path) -> int:
    """Remove empty worker cgroups left by tuner processes that no longer run."""
    removed = 0
    for group in parent.glob("tuner-*-*"):
        owner = group.name.split("-")[1]
        if not owner.isdigit() or Path(f"/proc/{owner}").exists():
            continue
        try:
            group.rmdir()  # fails while a process is still in it
            removed += 1
        except OSError:
            continue
    return removed
