"""How a worker process is confined: its user, interpreter, environment, temp folder and limits.

Run as root, the host starts every worker as an unprivileged user (``nobody`` unless
configured) in a new session, with a private temporary folder and an environment of
``function.yaml``'s variables plus PATH, LANG, HOME and TMPDIR.  That user usually cannot
execute the interpreter tuner runs under (a venv below root's home), so the host probes
which interpreter it can run, ``sys.executable`` first, then the system ``python3`` and
copies the worker script into a folder every user can read.  Run as anyone else, workers
keep the host's user: there is nothing to drop to.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog

from tuner.domain.errors import ConfigError, Problem
from tuner.providers.local import worker as worker_script

log = structlog.get_logger(__name__)

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
_RUNTIME_PREFIX = "tuner-runtime-"
RUNTIME_FILES = ("worker.py", "tracer.py", "allocation_sizes.py")
"""The worker's own files (standard library only), copied where the worker user can read them."""
SYSTEM_PYTHON = "/usr/bin/python3"
_PROBE_TIMEOUT_S = 15.0


def _problem(message: str, field: str) -> ConfigError:
    return ConfigError([Problem("local provider", None, message, field=field)])


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """The limits every worker of a host runs under."""

    user: str | None = "nobody"
    """The user workers run as when the host runs as root; None keeps root (not advised)."""
    python: str = SYSTEM_PYTHON
    """The interpreter for workers when the worker user cannot run ``sys.executable``."""
    pids_max: int = 64
    """Processes and threads one worker may have at once, children included."""
    output_bytes: int = 1024 * 1024
    """What one invocation may write to stdout and stderr; the rest is cut with a marker."""
    log_bytes: int = 16 * 1024 * 1024
    """Size of a function's log file before it is rotated to ``<name>.log.1``."""
    frame_bytes: int = 8 * 1024 * 1024
    """The largest protocol message a worker may send (its result included)."""
    file_bytes: int = 512 * 1024 * 1024
    """The largest file a worker (or its child) may write (RLIMIT_FSIZE)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The user a worker runs as."""

    name: str
    uid: int
    gid: int


class Sandbox:
    """The confinement of one host's workers; ``close()`` removes its runtime folder."""

    def __init__(self, policy: SandboxPolicy, *, uid: int | None = None) -> None:
        self.policy = policy
        self.worker_slots = 1
        """Workers that may run at once on the host (scales the per-user process limit)."""
        self.identity = (
            _identity(policy.user) if (os.geteuid() if uid is None else uid) == 0 else None
        )
        remove_stale_runtimes()
        self._runtime = Path(tempfile.mkdtemp(prefix=f"{_RUNTIME_PREFIX}{os.getpid()}-"))
        os.chmod(self._runtime, 0o755)  # the worker user passes through to its files
        (self._runtime / "tmp").mkdir(mode=0o711)
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._runtime, True)
        """Removes the folder (workers' temp folders included) even if close() is never called."""
        self.script = Path(worker_script.__file__)
        self.python = sys.executable
        if self.identity is not None:
            source = Path(worker_script.__file__).parent
            for name in RUNTIME_FILES:  # the worker loads its siblings by path
                if (source / name).is_file():
                    os.chmod(shutil.copy(source / name, self._runtime / name), 0o644)
            self.script = self._runtime / "worker.py"
            self.python = self._runnable_python()
        log.info(
            "worker sandbox",
            user=self.identity.name if self.identity else pwd.getpwuid(os.geteuid()).pw_name,
            python=self.python,
            dropped=self.identity is not None,
        )

    @property
    def drops_privileges(self) -> bool:
        """True when workers run as another (unprivileged) user."""
        return self.identity is not None

    def _runnable_python(self) -> str:
        tried = []
        for candidate in dict.fromkeys([sys.executable, self.policy.python]):
            probe = [candidate, "-I", str(self.script), "--probe"]  # run as the user throughout
            try:
                done = subprocess.run(
                    probe,
                    capture_output=True,
                    timeout=_PROBE_TIMEOUT_S,
                    cwd="/",
                    user=self._uid,
                    group=self._gid,
                    extra_groups=self._groups,
                )
            except OSError as error:
                tried.append(f"{candidate}: {error.strerror}")
                continue
            if done.returncode == 0:
                return candidate
            tried.append(f"{candidate}: exit {done.returncode}")
        assert self.identity is not None
        raise _problem(
            f"no interpreter the worker user {self.identity.name} can run ({'; '.join(tried)});"
            " make one readable to that user or name another",
            "worker_python",
        )

    @property
    def _uid(self) -> int | None:
        return None if self.identity is None else self.identity.uid

    @property
    def _gid(self) -> int | None:
        return None if self.identity is None else self.identity.gid

    @property
    def _groups(self) -> list[int] | None:
        return None if self.identity is None else []

    def nproc_limit(self, pids_cgroup: bool) -> int | None:
        """RLIMIT_NPROC for a worker: only for a dropped user without a pids cgroup.

        The kernel counts it per user, so it bounds all workers of the host together;
        for the host's own user it would count the person's own processes too.
        """
        if pids_cgroup or self.identity is None:
            return None
        return self.policy.pids_max * self.worker_slots

    def reachable(self, directory: Path) -> Path:
        """A path to a function's directory that the worker user can read.

        The directory itself when every user may read it; else a copy in the runtime
        folder (made now: later edits apply when the host restarts).
        """
        if self.identity is None or _readable_by_others(directory):
            return directory
        copy = self._runtime / "functions" / directory.name
        shutil.rmtree(copy, ignore_errors=True)
        # Links stay links: the worker follows them with its own rights, never with root's.
        shutil.copytree(directory, copy, symlinks=True)
        for folder, _, files in os.walk(copy):
            os.chmod(folder, 0o755)
            for name in files:
                path = os.path.join(folder, name)
                if not os.path.islink(path):  # chmod would change the link's target
                    os.chmod(path, 0o644)
        log.info("function copied where its worker user can read it", to=str(copy))
        return copy

    def command(self) -> list[str]:
        """The argv that starts a worker; the worker drops to its user itself, at once."""
        command = [self.python, "-I", str(self.script)]
        if self.identity is not None:
            command += ["--user", f"{self.identity.uid}:{self.identity.gid}"]
        return command

    def private_tmp(self, function: str) -> Path:
        """A new temporary folder that only the worker user can enter."""
        path = Path(tempfile.mkdtemp(prefix=f"{function}-", dir=self._runtime / "tmp"))
        if self.identity is not None:
            os.chown(path, self.identity.uid, self.identity.gid)
        return path

    def start(
        self, environment: dict[str, str], tmp: Path, cwd: Path, output: int
    ) -> subprocess.Popen[bytes]:
        """Start one confined worker: protocol on stdin/stdout, its output into ``output``."""
        return subprocess.Popen(
            self.command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=output,
            env={
                "PATH": SAFE_PATH,
                "LANG": "C.UTF-8",
                # One malloc arena: each further one reserves 64 MB of the address-space
                # cap (a traced invocation's sampling thread would take one).  Python
                # threads hold the GIL, so they hardly contend for it.
                "MALLOC_ARENA_MAX": "1",
                "HOME": str(tmp),
                "TMPDIR": str(tmp),
                **environment,
            },
            cwd=cwd,
            start_new_session=True,  # its own process group: killed as a whole
            close_fds=True,  # nothing of the host's is inherited
        )

    def close(self) -> None:
        """Remove the runtime folder, with any temporary folder a worker left."""
        self._cleanup()


_STATE_ENTRIES = ("local.sqlite", "local-token", "logs", "traces", "tuner.db")


def private_folder(path: Path) -> None:
    """Create the state folder, or narrow it, so that only its owner may enter it.

    It holds the endpoint's token, the invocation records (configurations with their
    environments) and, by default, tuner's own store.
    """
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        os.chmod(path, 0o700)  # whatever the umask
        return
    info = path.stat()
    if not info.st_mode & 0o077:
        return
    ours = all(entry.name.startswith(_STATE_ENTRIES) for entry in path.iterdir())
    if ours and info.st_uid == os.geteuid():
        os.chmod(path, 0o700)  # holds only tuner's own files: narrow it
    else:
        log.warning("state folder is readable by other users", path=str(path))


def remove_stale_runtimes(root: Path | None = None) -> int:
    """Remove runtime folders of hosts whose process no longer runs (killed, crashed)."""
    removed = 0
    for folder in (root or Path(tempfile.gettempdir())).glob(f"{_RUNTIME_PREFIX}*-*"):
        owner = folder.name.removeprefix(_RUNTIME_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _identity(user: str | None) -> Identity | None:
    if user is None:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise _problem(f"no user {user!r} to run workers as", "worker_user") from None
    if entry.pw_uid == 0:
        return None
    return Identity(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _readable_by_others(directory: Path) -> bool:
    """True when a user owning nothing and in no group could read the whole directory."""
    resolved = directory.resolve()
    for ancestor in resolved.parents:
        if not os.stat(ancestor).st_mode & 0o001:
            return False
    for folder, _, files in os.walk(resolved):
        if os.stat(folder).st_mode & 0o005 != 0o005:
            return False
        for name in files:
            if not os.stat(os.path.join(folder, name)).st_mode & 0o004:
                return False
    return True


def kill_group(pids: Iterable[int], group: int | None) -> None:
    """SIGKILL a process group (when given) and every listed process (a cgroup's members)."""
    if group is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def remove_tmp(path: Path) -> None:
    """Remove a worker's private temporary folder."""
    shutil.rmtree(path, ignore_errors=True)


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
