"""Each function's own user id: taken from a reserved range, recorded, leased machine-wide.

Run as root, the host gives every function a user id of its own, so that the kernel
keeps functions apart: a process may signal, trace or read the memory and environment
(``/proc/<pid>/mem``, ``/environ``) only of processes of its own user, and reads a file
of another user only where that file lets everyone.  The ids come from a range no
system uses by default (systemd's map of user ids leaves 1879048192-2147352575 unused),
have no name in ``/etc/passwd`` and a group of the same number.

A function keeps its id across restarts: the host records it in the state folder.  Two
hosts on one machine never share an id: each holds a lease on its ids (an exclusive
``flock`` on ``<leases>/<uid>``, root's own folder), which the kernel releases when the
host's process ends however it ends.  An id that has a name in ``/etc/passwd``, that a
running process uses, or that another host holds is skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog

from tuner.domain.errors import ConfigError, Problem

log = structlog.get_logger(__name__)

DEFAULT_UIDS = (1_879_048_192, 1_879_048_192 + 65_535)
"""The range functions' user ids are taken from (inclusive), by default."""
RECORD_FILE = "worker-uids.json"


@dataclass(frozen=True, slots=True)
class Identity:
    """The user (and group) a function's workers run as."""

    name: str
    uid: int
    gid: int


def _problem(message: str) -> ConfigError:
    return ConfigError([Problem("local provider", None, message, field="worker_uids")])


def lease_folder() -> Path:
    """Where hosts lease user ids: ``/run/tuner-uids``, else in the temporary folder."""
    run = Path("/run")
    base = run if run.is_dir() and os.access(run, os.W_OK) else Path(tempfile.gettempdir())
    return base / "tuner-uids"


class Identities:
    """The user ids of one host's functions, held until :meth:`close`."""

    def __init__(self, uids: tuple[int, int], record: Path, leases: Path | None = None) -> None:
        first, last = uids
        if not 0 < first <= last < 2**32 - 1:
            raise _problem(f"worker_uids {first}..{last} is not a range of user ids above 0")
        self.first, self.last = first, last
        self.record = record
        self.leases = leases or lease_folder()
        _own_folder(self.leases)
        self._held: dict[str, tuple[Identity, int]] = {}

    def take(self, functions: Iterable[str]) -> dict[str, Identity]:
        """An identity for each function: its recorded one when free, else the next free id."""
        recorded = self._recorded()
        busy = _uids_in_use(self.first, self.last)
        for name in sorted(functions, key=lambda n: n not in recorded):  # recorded ones first
            if name in self._held:
                continue
            promised = {uid for other, uid in recorded.items() if other != name}
            preferred = [recorded[name]] if name in recorded else []
            for uid in [*preferred, *range(self.first, self.last + 1)]:
                if uid in promised or uid in self._held_uids() or not self._free(uid, busy):
                    continue
                lease = self._lease(uid, name)
                if lease is not None:
                    self._held[name] = (Identity(name, uid, uid), lease)
                    break
            else:
                raise _problem(f"no free user id left in {self.first}..{self.last} for {name}")
        self._write_record({name: identity.uid for name, (identity, _) in self._held.items()})
        return {name: identity for name, (identity, _) in self._held.items()}

    def _held_uids(self) -> set[int]:
        return {identity.uid for identity, _ in self._held.values()}

    def _free(self, uid: int, busy: set[int]) -> bool:
        if not self.first <= uid <= self.last or uid in busy:
            return False
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return True
        return False  # a named user: someone else's

    def _lease(self, uid: int, function: str) -> int | None:
        path = self.leases / str(uid)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        os.ftruncate(descriptor, 0)
        holder = {"pid": os.getpid(), "function": function, "record": str(self.record)}
        os.pwrite(descriptor, json.dumps(holder).encode(), 0)
        return descriptor

    def _recorded(self) -> dict[str, int]:
        try:
            data = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, int)}

    def _write_record(self, uids: dict[str, int]) -> None:
        kept = {**self._recorded(), **uids}
        partial = self.record.with_suffix(".tmp")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(kept, file, indent=1, sort_keys=True)
        os.replace(partial, self.record)

    def close(self) -> None:
        """Give the leases up (the record stays: a function gets its id back next time)."""
        for _, descriptor in self._held.values():
            with contextlib.suppress(OSError):
                os.close(descriptor)  # closing the last descriptor releases the flock
        self._held.clear()


def _own_folder(path: Path) -> None:
    """Create the lease folder, or check that nobody but root could have placed it there."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise _problem(f"{path} must be a folder of the daemon's user that no one else may enter")


def _uids_in_use(first: int, last: int) -> set[int]:
    """User ids in the range that running processes hold (a scan of /proc).

    Read from each process's status (its real user), not from the owner of its /proc
    folder, which is root for a process that changed user and is not dumpable.
    """
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "status"), "rb") as status:
                uid = int(status.read().split(b"\nUid:", 1)[1].split()[0])
        except (OSError, IndexError, ValueError):
            continue
        if first <= uid <= last:
            found.add(uid)
    return found
