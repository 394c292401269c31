"""What a worker does to itself before it runs a handler: its user, its /proc, its limits.

Loaded by the worker as a sibling (by path, standard library only), never by the daemon.
"""

from __future__ import annotations

import os
import resource
import signal

_MB = 1024 * 1024
_MAX_FILES = 1024


def read_memory_status() -> dict[str, int]:
    """VmSize, VmRSS and VmHWM of this process in kB."""
    status: dict[str, int] = {}
    with open("/proc/self/status") as lines:
        for line in lines:
            key, _, value = line.partition(":")
            if key in ("VmSize", "VmRSS", "VmHWM"):
                status[key] = int(value.split()[0])
    return status


def drop_privileges(uid: int, gid: int) -> None:
    """Become ``uid``/``gid`` (the function's own user) with no other groups, at once.

    This runs before any handler code is loaded.  Changing user inside the process
    (rather than before exec) also makes the kernel mark it not dumpable.  The umask
    keeps the files the handler makes to its own function unless it says otherwise.
    """
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    os.umask(0o077)


_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18


def enter_compartment() -> None:
    """A mount namespace of this worker's own, whose /proc shows only its user's processes.

    Run as root, before the worker drops to its function's user: the new ``proc``
    instance is mounted with ``hidepid=invisible`` (Linux 5.8 or later; an older kernel
    refuses the option, and the host then runs workers without it), so that neither
    another function's processes nor the daemon's can be seen, let alone found by pid.
    Mounts made here never propagate to the host.
    """
    import ctypes  # only a confined worker needs it

    libc = ctypes.CDLL(None, use_errno=True)

    def check(result: int, step: str) -> None:
        """Stop at the first step that fails: later ones would act on the host's mounts."""
        if result != 0:
            number = ctypes.get_errno()
            raise OSError(number, f"{step}: {os.strerror(number)}")

    check(libc.unshare(_CLONE_NEWNS), "unshare")
    check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "private mounts")
    options = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    check(libc.mount(b"proc", b"/proc", b"proc", options, b"hidepid=invisible"), "private /proc")


def limit_processes(nproc: int | None, file_bytes: int | None = None) -> None:
    """No core dumps, files of at most ``file_bytes``, at most ``nproc`` processes for the user.

    A write past the file size limit fails with EFBIG (an OSError) instead of killing.
    Open files are capped at the usual 1,024 whatever the daemon's own limit is.
    """
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, most_files = resource.getrlimit(resource.RLIMIT_NOFILE)
    if most_files == resource.RLIM_INFINITY or most_files > _MAX_FILES:
        resource.setrlimit(resource.RLIMIT_NOFILE, (_MAX_FILES, _MAX_FILES))
    if file_bytes is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    if nproc is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def limit_address_space(memory_mb: int) -> int:
    """Cap the address space so the resident memory of the process can reach ``memory_mb``.

    The cap is the memory limit plus the part of the address space that is mapped but not
    resident right now (shared libraries, reserved arenas): an allocation that would push
    the process past ``memory_mb`` resident then raises MemoryError.
    """
    status = read_memory_status()
    non_resident_kb = status["VmSize"] - status["VmRSS"]
    limit = memory_mb * _MB + non_resident_kb * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return non_resident_kb // 1024
