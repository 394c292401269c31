"""The worker process that runs one function's handler, one invocation at a time.

The host starts this file as a script (``python -I worker.py``) so that a worker imports
the standard library only.  It speaks JSON lines: requests on stdin, replies on a private
copy of stdout; the handler's own prints go to stderr, which the host sends to a log file.

Protocol (host -> worker): ``init`` once, then ``invoke`` repeatedly (with ``trace`` options
when the invocation is traced, see ``tracer.py``), and ``cache_value`` as the answer to a
``cache_get``.  Worker -> host: ``ready`` after init, then per invocation any number of
``dependency_get`` (answered by ``dependency_value``), ``cache_get`` (answered by
``cache_value``), ``cache_set``, ``invoke_call`` (answered by ``invoke_result``) and, when
traced, ``trace`` messages (the tracer's profile so far), and finally one ``result``:
``ok`` with the handler's return value or ``error`` with what it raised.  Nothing else is
believed: the host measures time, memory and leftovers itself, and a MemoryError ends
this process with :data:`EXIT_OUT_OF_MEMORY`, which the host reads from the exit status
(the handler's code shares this process, so whatever it writes on the pipe is a claim,
never a measurement).
"""

from __future__ import annotations

import errno
import importlib.util
import json
import logging
import os
import resource
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

_MB = 1024 * 1024
_MAX_FILES = 1024
EXIT_OUT_OF_MEMORY = 86
"""The exit status after a MemoryError caught in :func:`serve`: the host's ``oom``."""


class DependencyError(Exception):
    """A call to a named dependency failed (refused, timed out or answered 5xx)."""


class InvocationError(Exception):
    """A function called through ``context.invoke`` did not succeed."""

    def __init__(self, name: str, outcome: str, error: str) -> None:
        super().__init__(f"{name}: {outcome}: {error}")
        self.function = name
        self.outcome = outcome


class Channel:
    """JSON lines between this worker and the host."""

    def __init__(self, incoming: IO[str], outgoing: IO[str]) -> None:
        self._incoming = incoming
        self._outgoing = outgoing
        self._sending = threading.Lock()  # the tracer's thread sends too

    def send(self, message: dict[str, Any]) -> None:
        """Write one message and flush it."""
        self.send_encoded(json.dumps(message))

    def send_encoded(self, text: str) -> None:
        """Write one message already encoded as JSON (on one line) and flush it."""
        with self._sending:
            self._outgoing.write(text + "\n")
            self._outgoing.flush()

    def receive(self) -> dict[str, Any] | None:
        """The next message, or None when the host closed the pipe."""
        line = self._incoming.readline()
        if not line:
            return None
        message: dict[str, Any] = json.loads(line)
        return message


class Cache:
    """The platform cache as a handler sees it: shared by all workers, off when TTL is 0."""

    def __init__(self, channel: Channel, enabled: bool) -> None:
        self._channel = channel
        self.enabled = enabled

    def get(self, key: str) -> Any:
        """The cached value for ``key``, or None on a miss (always None when off)."""
        if not self.enabled:
            return None
        self._channel.send({"type": "cache_get", "key": key})
        reply = self._channel.receive()
        return None if reply is None else reply.get("value")

    def set(self, key: str, value: Any) -> None:
        """Cache a JSON-serialisable value for the configured TTL (ignored when off)."""
        if self.enabled:
            self._channel.send({"type": "cache_set", "key": key, "value": value})


class DependencyClient:
    """Calls one named dependency through the host, which makes, times and records the call."""

    def __init__(self, name: str, channel: Channel) -> None:
        self.name = name
        self._channel = channel

    def get(self, path: str = "/") -> Any:
        """GET ``path`` from the dependency and return the decoded JSON body."""
        self._channel.send({"type": "dependency_get", "name": self.name, "path": path})
        reply = self._channel.receive() or {"error": "the host closed the channel"}
        if reply.get("error"):
            raise DependencyError(f"{self.name}: {reply['error']}")
        return reply.get("value")


class Context:
    """What the platform gives a handler: identity, remaining time, logger, cache, deps."""

    def __init__(
        self,
        function_name: str,
        memory_limit_mb: int,
        deadline: float,
        cache: Cache,
        dependency_urls: dict[str, str],
        channel: Channel,
        fused: Any = None,
    ) -> None:
        self.function_name = function_name
        self.memory_limit_mb = memory_limit_mb
        self.cache = cache
        self.logger = logging.getLogger(function_name)
        self._deadline = deadline
        self._dependency_urls = dependency_urls
        self._channel = channel
        self._fused = fused
        """The functions fused into this one (``fused_worker.FusedFunctions``): run here."""

    def remaining_time_ms(self) -> int:
        """Milliseconds left before the host kills this invocation."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def dependency(self, name: str) -> DependencyClient:
        """A client for the named dependency; raises KeyError for an unknown name."""
        if name not in self._dependency_urls:
            raise KeyError(name)
        return DependencyClient(name, self._channel)

    def invoke(self, name: str, event: Any) -> Any:
        """Invoke another hosted function through the host and return its result.

        The call runs with the callee's own limits; a callee that does not succeed raises
        :class:`InvocationError` (with its outcome: error, timeout, oom).  A callee fused
        into this function runs in this process, with the same result.
        """
        if self._fused is not None and name in self._fused:
            return self._fused.call(name, event, self._deadline)
        self._channel.send({"type": "invoke_call", "name": name, "event": event})
        reply = self._channel.receive() or {"outcome": "error", "error": "host closed"}
        if reply.get("outcome") != "ok":
            raise InvocationError(name, reply.get("outcome", "error"), reply.get("error", ""))
        return reply.get("result")


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


def load_handler(directory: str) -> Callable[[Any, Context], Any]:
    """Import ``handler.py`` from the function's directory and return its ``handler``."""
    sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location("handler", os.path.join(directory, "handler.py"))
    if spec is None or spec.loader is None:
        raise ImportError(f"no handler.py in {directory}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["handler"] = module
    spec.loader.exec_module(module)
    handler: Callable[[Any, Context], Any] = module.handler
    return handler


def sibling(name: str) -> Any:
    """A module next to this file, loaded by path: a worker imports nothing from tuner's package."""
    qualified = f"tuner_worker_{name}"
    if qualified not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
        spec = importlib.util.spec_from_file_location(qualified, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        module.sibling = sibling  # type: ignore[attr-defined]  # its own siblings, the same way
        sys.modules[qualified] = module
        spec.loader.exec_module(module)
    return sys.modules[qualified]


def start_tracer(
    options: dict[str, Any] | None, init: dict[str, Any], handler: Any, channel: Channel
) -> Any:
    """A started tracer for this invocation (see ``tracer.py``), or None when not traced.

    It sends its profile to the host as ``trace`` messages: every 200 ms while the
    handler runs (what a killed invocation leaves) and once more when it finishes.
    """
    if not options:
        return None
    tracer = sibling("tracer").InvocationTracer(
        {**options, "allocations": options.get("allocations", False) and init.get("served", 0) > 0},
        init["directory"],
        init["memory_mb"],
        handler,
        channel.send_encoded,
    )
    tracer.start(read_memory_status()["VmRSS"] / 1024)
    return tracer


def _is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or (
        isinstance(error, OSError) and error.errno == errno.ENOMEM
    )


def serve(channel: Channel) -> None:
    """Initialise from the first message, then run invocations until the pipe closes."""
    init = channel.receive()
    if init is None:
        return
    started = time.monotonic()
    limit_processes(init.get("nproc"), init.get("file_bytes"))
    handler = load_handler(init["directory"])
    fused = None  # the functions fused into this one, run in this process
    if init.get("fused"):
        fused = sibling("fused_worker").load(init, channel, Context, Cache, InvocationError)
    reserve = bytearray(2 * _MB)  # freed on MemoryError so the trace can still be sent
    non_resident_mb = limit_address_space(init["memory_mb"])
    channel.send(
        {
            "type": "ready",
            "init_ms": (time.monotonic() - started) * 1000,
            "non_resident_mb": non_resident_mb,
        }
    )
    cache = Cache(channel, enabled=init["cache_ttl_s"] > 0)
    while (request := channel.receive()) is not None:
        deadline = time.monotonic() + init["timeout_s"]
        context = Context(
            init["function"],
            init["memory_mb"],
            deadline,
            cache,
            init["dependencies"],
            channel,
            fused,
        )
        reply: dict[str, Any] = {"type": "result", "outcome": "ok"}
        tracer, failure = start_tracer(request.get("trace"), init, handler, channel), None
        out_of_memory, began = False, time.monotonic()
        try:
            reply["result"] = handler(request["event"], context)
            json.dumps(reply["result"])
        except BaseException as error:  # the handler's failure is the outcome, not ours
            failure = error
            if _is_out_of_memory(error):
                out_of_memory = True
                del reserve  # room to send the trace of what ran out
            else:
                reply = {
                    "type": "result",
                    "outcome": "error",
                    "error": f"{type(error).__name__}: {error}",
                }
                traceback.print_exc()
        ran = time.monotonic()
        try:
            if tracer is not None:
                tracer.finish(failure, out_of_memory)  # sends the trace; its thread is joined
        finally:
            if out_of_memory:
                try:
                    sys.stderr.flush()
                finally:
                    os._exit(EXIT_OUT_OF_MEMORY)  # a worker that ran out of memory is not reused
        init["served"] = init.get("served", 0) + 1
        reply["handler_ms"] = round((ran - began) * 1000, 3)  # the tracer's finish left out
        failure = None  # its traceback holds the handler's frames (and their memory)
        channel.send(reply)


def main() -> None:
    """Run as a worker: confine this process, then keep a private copy of stdout for the protocol.

    Arguments: ``--compartment`` (a mount namespace with a private /proc), ``--user
    UID:GID`` (the function's own user), ``--probe`` (the host checks that this
    interpreter, and the confinement asked for, work here: exit at once).
    """
    arguments = sys.argv[1:]
    if "--compartment" in arguments:
        enter_compartment()
    if "--user" in arguments:
        uid, gid = arguments[arguments.index("--user") + 1].split(":")
        drop_privileges(int(uid), int(gid))
    if "--probe" in arguments:
        return
    protocol_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the handler's print() goes to the log, never into the protocol
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    serve(Channel(sys.stdin, protocol_out))


if __name__ == "__main__":
    main()
