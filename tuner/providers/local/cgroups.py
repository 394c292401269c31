"""Kernel limits for workers: a cgroup v1 child per worker, where one can be made.

The address-space cap set inside each worker is the portable limit and turns an
over-allocation into MemoryError.  Where the cgroup v1 memory controller is writable
(root on a v1 host), each worker additionally runs in a child of tuner's own memory
cgroup with a hard limit a little above its memory size, so even memory the cap cannot
see (child processes of a handler) is bounded; the kernel then kills the worker.  Where
the pids controller is writable too, a second child caps the processes and threads of
the worker and its children (``pids.max``).  The memory group lists every process of the
worker's tree, however it detached, so the host can kill them all.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path

import structlog

from tuner.providers.local.executions import LimitFactory, MemoryLimit, WorkerSpec

log = structlog.get_logger(__name__)

_V1_ROOT = Path("/sys/fs/cgroup/memory")
_V1_PIDS_ROOT = Path("/sys/fs/cgroup/pids")
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

    limits_pids = False

    def add(self, pid: int) -> None:
        """Move the process into the cgroup."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def members(self) -> list[int]:
        """Process ids in the cgroup (children included, whatever session they made)."""
        try:
            return [int(pid) for pid in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

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


class CgroupPidsLimit(CgroupMemoryLimit):
    """One worker's memory cgroup plus a pids cgroup holding the same processes."""

    limits_pids = True

    def __init__(self, path: Path, limit_mb: int, pids_path: Path, pids_max: int) -> None:
        super().__init__(path, limit_mb)
        self.pids_path = pids_path
        try:
            pids_path.mkdir()
            (pids_path / "pids.max").write_text(str(pids_max))
        except OSError:
            super().remove()
            raise

    def add(self, pid: int) -> None:
        """Move the process into both cgroups."""
        (self.pids_path / "cgroup.procs").write_text(str(pid))
        super().add(pid)

    def remove(self) -> None:
        """Remove both (now empty) cgroups."""
        super().remove()
        try:
            self.pids_path.rmdir()
        except OSError as error:
            log.debug("cgroup not removed", path=str(self.pids_path), error=str(error))


class CgroupLimits:
    """Makes a cgroup per worker under tuner's own memory (and pids) cgroup."""

    def __init__(self, parent: Path, pids_parent: Path | None = None, pids_max: int = 64) -> None:
        self.parent = parent
        self.pids_parent = pids_parent
        self.pids_max = pids_max
        self._serial = itertools.count(1)

    def __call__(self, spec: WorkerSpec) -> MemoryLimit | None:
        """A limit for a worker of ``spec``; None when the cgroup cannot be made."""
        name = f"tuner-{os.getpid()}-{next(self._serial)}"
        limit_mb = spec.memory_mb + _HEADROOM_MB
        try:
            if self.pids_parent is not None:
                return CgroupPidsLimit(
                    self.parent / name, limit_mb, self.pids_parent / name, self.pids_max
                )
            return CgroupMemoryLimit(self.parent / name, limit_mb)
        except OSError as error:
            log.debug("no cgroup for worker", function=spec.function, error=str(error))
            return None


def own_memory_cgroup(root: Path = _V1_ROOT, controller: str = "memory") -> Path | None:
    """The directory of this process's cgroup v1 group of a controller, when mounted."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, relative = line.split(":", 2)
        if controller in controllers.split(","):
            path = root / relative.lstrip("/")
            return path if path.is_dir() else None
    return None


def _writable(parent: Path | None) -> bool:
    if parent is None:
        return False
    probe = parent / f"tuner-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return False
    return True


def memory_limits(
    root: Path = _V1_ROOT, pids_root: Path = _V1_PIDS_ROOT, pids_max: int = 64
) -> LimitFactory | None:
    """Per-worker cgroup limits when cgroup v1 memory is writable here, else None.

    The pids controller is added when it is writable as well.
    """
    parent = own_memory_cgroup(root)
    if not _writable(parent):
        log.info("cgroup memory limits unavailable; using the address-space cap only")
        return None
    assert parent is not None
    pids_parent = own_memory_cgroup(pids_root, "pids")
    if not _writable(pids_parent):
        pids_parent = None
    removed = remove_stale(parent) + (remove_stale(pids_parent) if pids_parent else 0)
    log.info(
        "cgroup v1 limits enabled",
        parent=str(parent),
        pids=str(pids_parent),
        stale_removed=removed,
    )
    return CgroupLimits(parent, pids_parent, pids_max)


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
