"""What the host reads of its workers' processes in /proc, and how it kills them.

All of it is read by the host from the kernel, never taken from the worker's word: a
worker's peak resident memory and threads, whether it is stopped by a signal, the
resident memory of its process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass


def kill_group(pids: Iterable[int], group: int | None) -> None:
    """SIGKILL a process group (when given) and every listed process (a cgroup's members)."""
    if group is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    """What /proc says about a worker: its peak resident memory and thread count."""

    peak_mb: float
    threads: int


class ProcessProbe:
    """Reads a worker's status and resets its peak through /proc files kept open."""

    def __init__(self, pid: int) -> None:
        self._status = _open(f"/proc/{pid}/status", os.O_RDONLY)
        self._clear_refs = _open(f"/proc/{pid}/clear_refs", os.O_WRONLY)
        """None on an older kernel: the peak then covers the worker's whole life."""

    def read(self) -> ProcessStatus | None:
        """VmHWM and Threads of the process, measured by the host; None once it is gone."""
        if self._status is None:
            return None
        try:
            text = os.pread(self._status, 8192, 0)
            peak_kb = int(text.split(b"VmHWM:", 1)[1].split(None, 1)[0])
            threads = int(text.split(b"Threads:", 1)[1].split(None, 1)[0])
        except (OSError, ValueError, IndexError):
            return None
        return ProcessStatus(peak_kb / 1024, threads)

    def reset_peak(self) -> None:
        """Reset VmHWM to the current RSS so the next reading is one invocation's peak."""
        if self._clear_refs is not None:
            with contextlib.suppress(OSError):
                os.write(self._clear_refs, b"5")

    def close(self) -> None:
        """Close the /proc files."""
        for fd in (self._status, self._clear_refs):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _open(path: str, flags: int) -> int | None:
    try:
        return os.open(path, flags | os.O_CLOEXEC)
    except OSError:
        return None


_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def group_rss_mb(group: int) -> float:
    """Resident memory of every process in a process group (a scan of /proc)."""
    total_pages = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat_file:
                fields = stat_file.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # after the name: state, ppid, pgrp, ... rss is 22nd
            total_pages += int(fields[21])
    return total_pages * _PAGE_MB


def stopped(pid: int) -> bool:
    """True when the kernel says the process is stopped by a signal (or by a tracer)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            state = stat_file.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in (b"T", b"t")
