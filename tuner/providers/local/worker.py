"""The worker process that runs one function's handler, one invocation at a time.

The host starts this file as a script (``python -I worker.py``) so that a worker imports
the standard library only.  It speaks JSON lines: requests on stdin, replies on a private
copy of stdout; the handler's own prints go to stderr, which the host sends to a log file.

Protocol (host -> worker): ``init`` once, then ``invoke`` repeatedly (with ``trace`` options
when the invocation is traced, see ``tracer.py``), and ``cache_value`` as the answer to a
``cache_get``.  Worker -> host: ``ready`` after init, then per invocation any number of
``dependency_get`` (answered by ``dependency_value``), ``cache_get`` (answered by
``cache_value``), ``cache_set``, ``invoke_call`` (answered by ``invoke_result``),
``handover`` and ``invoke_parts`` (tuner_handler's remedies, answered by ``handover_reply``
and ``parts_result``) and, when traced, ``trace`` messages (the tracer's profile so far),
and finally one ``result``:
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
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

_MB = 1024 * 1024
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
        request_id: str = "",
        fused: Any = None,
    ) -> None:
        self.function_name = function_name
        self.aws_request_id = request_id  # the host's id of this invocation, named as on Lambda
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

    def hand_over(self, state: Any) -> dict[str, Any]:
        """Ask the host to go on with this chain in a fresh invocation (tuner_handler's handover)."""
        self._channel.send({"type": "handover", "state": state})
        return self._channel.receive() or {"accepted": False, "error": "the host closed"}

    def invoke_parts(self, events: list[Any]) -> Any:
        """Run each event as an invocation of this function, in parallel (tuner_handler's split)."""
        self._channel.send({"type": "invoke_parts", "events": events})
        reply = self._channel.receive() or {"error": "the host closed"}
        return reply.get("parts", reply)


def load_handler(directory: str, library: str | None = None) -> Callable[[Any, Context], Any]:
    """Import ``handler.py`` from the function's directory and return its ``handler``.

    ``library`` holds tuner_handler, found after the function's folder (its own copy wins).
    """
    sys.path.insert(0, directory)
    if library:
        sys.path.append(library)
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
    tracer.start(sibling("worker_limits").read_memory_status()["VmRSS"] / 1024)
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
    limits = sibling("worker_limits")
    limits.limit_processes(init.get("nproc"), init.get("file_bytes"))
    handler = load_handler(init["directory"], init.get("library"))
    fused = None  # the functions fused into this one, run in this process
    if init.get("fused"):
        fused = sibling("fused_worker").load(init, channel, Context, Cache, InvocationError)
    reserve = bytearray(2 * _MB)  # freed on MemoryError so the trace can still be sent
    non_resident_mb = limits.limit_address_space(init["memory_mb"])
    supports = getattr(handler, "__tuner_handler__", None)  # set by tuner_handler's decorators
    channel.send(
        {
            "type": "ready",
            "init_ms": (time.monotonic() - started) * 1000,
            "non_resident_mb": non_resident_mb,
            "supports": [supports] if isinstance(supports, str) else [],
        }
    )
    cache = Cache(channel, enabled=init["cache_ttl_s"] > 0)
    while (request := channel.receive()) is not None:
        deadline = time.monotonic() + init["timeout_s"]
        request_id, dependencies = str(request.get("request_id", "")), init["dependencies"]
        context = Context(
            init["function"],
            init["memory_mb"],
            deadline,
            cache,
            dependencies,
            channel,
            request_id,
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
        sibling("worker_limits").enter_compartment()
    if "--user" in arguments:
        uid, gid = arguments[arguments.index("--user") + 1].split(":")
        sibling("worker_limits").drop_privileges(int(uid), int(gid))
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
