"""How a worker process is confined: its user, its view of /proc, environment, temp folder, limits.

Run as root, the host starts every function's workers as that function's own user
(:mod:`identities`), in a new session, with a private temporary folder and an
environment of ``function.yaml``'s variables plus PATH, LANG, HOME and TMPDIR.  Where
the kernel lets root make a mount namespace, each worker also gets one whose ``/proc``
shows only its own user's processes (``hidepid=invisible``): a function can neither
see, signal nor trace another function's processes or the daemon's.  That user usually
cannot execute the interpreter tuner runs under (a venv below root's home), so the
host probes which interpreter it can run, ``sys.executable`` first, then the system
``python3``, and copies the worker script into a folder every user can read.  Run as
anyone else, workers keep the host's user: there is nothing to drop to.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog

from tuner.domain.errors import ConfigError, Problem
from tuner.providers.local import worker as worker_script
from tuner.providers.local.identities import DEFAULT_UIDS, RECORD_FILE, Identities, Identity
from tuner.providers.local.library import copy_library

log = structlog.get_logger(__name__)

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
_RUNTIME_PREFIX = "tuner-runtime-"
RUNTIME_FILES = (
    "worker.py",
    "worker_limits.py",
    "tracer.py",
    "allocation_sizes.py",
    "fused_worker.py",
)
"""The worker's own files (standard library only), copied where the worker user can read them."""
SYSTEM_PYTHON = "/usr/bin/python3"
_PROBE_TIMEOUT_S = 15.0


def _problem(message: str, field: str) -> ConfigError:
    return ConfigError([Problem("local provider", None, message, field=field)])


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """The limits every worker of a host runs under."""

    uids: tuple[int, int] | None = DEFAULT_UIDS
    """The range each function's own user id is taken from when the host runs as root;
    None keeps root (not advised)."""
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
    trace_bytes: int = 2 * 1024 * 1024
    """The largest ``trace`` message (a traced invocation's profile) a worker may send."""
    file_bytes: int = 512 * 1024 * 1024
    """The largest file a worker (or its child) may write (RLIMIT_FSIZE)."""


class Sandbox:
    """The confinement of one host's workers; ``close()`` removes its runtime folder."""

    def __init__(
        self,
        policy: SandboxPolicy,
        functions: Iterable[str] = (),
        state_dir: Path | None = None,
        *,
        uid: int | None = None,
    ) -> None:
        self.policy = policy
        self.worker_slots = 1
        """Workers of one function that may run at once (scales the per-user process limit)."""
        root = (os.geteuid() if uid is None else uid) == 0
        self._identities = (
            Identities(policy.uids, (state_dir or Path(tempfile.gettempdir())) / RECORD_FILE)
            if root and policy.uids is not None
            else None
        )
        self.identities: dict[str, Identity] = (
            self._identities.take(functions) if self._identities is not None else {}
        )
        remove_stale_runtimes()
        self._runtime = Path(tempfile.mkdtemp(prefix=f"{_RUNTIME_PREFIX}{os.getpid()}-"))
        os.chmod(self._runtime, 0o755)  # the worker users pass through to their files
        (self._runtime / "tmp").mkdir(mode=0o711)
        (self._runtime / "functions").mkdir(mode=0o711)
        self.library = copy_library(self._runtime / "lib")
        """Holds tuner_handler, for the worker's path."""
        self._cleanup = weakref.finalize(self, _remove_runtime, self._runtime, self._identities)
        """Removes the folder (workers' temp folders included) even if close() is never called."""
        self.script = Path(worker_script.__file__)
        self.python = sys.executable
        self.hides_processes = False
        """True when each worker's /proc shows only its own user's processes."""
        self.reading_profiles = threading.Lock()
        """One profile is parsed at a time on a host: a forged one costs the daemon its
        size once, not once per worker that sends one."""
        if self.identities:
            source = Path(worker_script.__file__).parent
            for name in RUNTIME_FILES:  # the worker loads its siblings by path
                if (source / name).is_file():
                    os.chmod(shutil.copy(source / name, self._runtime / name), 0o644)
            self.script = self._runtime / "worker.py"
            probe = next(iter(self.identities.values()))
            self.python = self._runnable_python(probe)
            self.hides_processes = self._compartment_works(probe)
        log.info(
            "worker sandbox",
            users="one per function" if self.identities else pwd.getpwuid(os.geteuid()).pw_name,
            python=self.python,
            dropped=self.drops_privileges,
            hidden=self.hides_processes,
        )

    @property
    def drops_privileges(self) -> bool:
        """True when workers run as other (unprivileged) users, one per function."""
        return bool(self.identities)

    def _runnable_python(self, probe: Identity) -> str:
        tried = []
        for candidate in dict.fromkeys([sys.executable, self.policy.python]):
            command = [candidate, "-I", str(self.script), "--probe"]  # run as the user throughout
            try:
                done = subprocess.run(
                    command,
                    capture_output=True,
                    timeout=_PROBE_TIMEOUT_S,
                    cwd="/",
                    user=probe.uid,
                    group=probe.gid,
                    extra_groups=[],
                )
            except OSError as error:
                tried.append(f"{candidate}: {error.strerror}")
                continue
            if done.returncode == 0:
                return candidate
            tried.append(f"{candidate}: exit {done.returncode}")
        raise _problem(
            f"no interpreter the worker user (uid {probe.uid}) can run ({'; '.join(tried)});"
            " make one readable to every user or name another",
            "worker_python",
        )

    def _compartment_works(self, probe: Identity) -> bool:
        """True when a worker can make its own mount namespace with a private /proc here."""
        command = [self.python, "-I", str(self.script), *_drop(probe, compartment=True), "--probe"]
        try:
            done = subprocess.run(command, capture_output=True, timeout=_PROBE_TIMEOUT_S, cwd="/")
        except OSError:
            return False
        if done.returncode != 0:
            log.warning(
                "workers cannot hide other processes here: no mount namespace",
                why=done.stderr.decode(errors="replace").strip()[-200:],
            )
        return done.returncode == 0

    def identity(self, function: str) -> Identity | None:
        """The user a function's workers run as; None when they keep the host's."""
        return self.identities.get(function)

    def nproc_limit(self, function: str, pids_cgroup: bool) -> int | None:
        """RLIMIT_NPROC for a worker: only for a dropped user without a pids cgroup.

        The kernel counts it per user, so it bounds all workers of the function together;
        for the host's own user it would count the person's own processes too.
        """
        if pids_cgroup or self.identity(function) is None:
            return None
        return self.policy.pids_max * self.worker_slots

    def reachable(self, directory: Path, function: str, into: str = "") -> Path:
        """A path to a function's directory that its worker user can read.

        The directory itself when every user may read it; else a copy in the runtime
        folder (made now: later edits apply when the host restarts), owned by the
        function's user, whose every file keeps the operator's permissions for its owner
        and none for anyone else: a secret stays readable by its function only.  ``into``
        names the copy's folder (default the directory's own name): another function's
        code made readable for ``function`` goes to a folder of its own.
        """
        identity = self.identity(function)
        if identity is None or _readable_by_others(directory):
            return directory
        copy = self._runtime / "functions" / (into or directory.name)
        shutil.rmtree(copy, ignore_errors=True)
        # Links stay links: the worker follows them with its own rights, never with root's.
        shutil.copytree(directory, copy, symlinks=True)
        for folder, folders, files in os.walk(copy):
            links = [f for f in folders if os.path.islink(os.path.join(folder, f))]
            for path in [folder, *(os.path.join(folder, name) for name in files + links)]:
                if not os.path.islink(path):  # chmod would change the link's target
                    original = directory / os.path.relpath(path, copy)
                    os.chmod(path, os.lstat(original).st_mode & 0o700)
                os.lchown(path, identity.uid, identity.gid)
        log.info("function copied for its worker user", to=str(copy), uid=identity.uid)
        return copy

    def command(self, function: str) -> list[str]:
        """The argv that starts a worker; the worker confines itself at once, before any handler code."""
        command = [self.python, "-I", str(self.script)]
        identity = self.identity(function)
        if identity is not None:
            command += _drop(identity, compartment=self.hides_processes)
        return command

    def private_tmp(self, function: str) -> Path:
        """A new temporary folder that only the function's worker user can enter."""
        path = Path(tempfile.mkdtemp(prefix=f"{function}-", dir=self._runtime / "tmp"))
        identity = self.identity(function)
        if identity is not None:
            os.chown(path, identity.uid, identity.gid)
        return path

    def start(
        self, function: str, environment: dict[str, str], tmp: Path, cwd: Path, output: int
    ) -> subprocess.Popen[bytes]:
        """Start one confined worker: protocol on stdin/stdout, its output into ``output``."""
        return subprocess.Popen(
            self.command(function),
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
        """Remove the runtime folder, with any temporary folder a worker left; give the ids up."""
        self._cleanup()


def _drop(identity: Identity, *, compartment: bool) -> list[str]:
    """The worker's arguments that make it confine itself (see ``worker.main``)."""
    return [
        "--user",
        f"{identity.uid}:{identity.gid}",
        *(["--compartment"] if compartment else []),
    ]


def _remove_runtime(runtime: Path, identities: Identities | None) -> None:
    shutil.rmtree(runtime, ignore_errors=True)
    if identities is not None:
        identities.close()


_STATE_ENTRIES = ("local.sqlite", "local-token", "logs", "traces", "tuner.db", "worker-uids")


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


def remove_tmp(path: Path) -> None:
    """Remove a worker's private temporary folder."""
    shutil.rmtree(path, ignore_errors=True)
