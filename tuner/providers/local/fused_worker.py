"""Fused functions inside a worker: ``context.invoke`` of one runs in this process.

Standard library only: ``worker.py`` loads this file by path.  The host names the
functions fused into the worker's own in its ``init`` message (``fused``: their folders,
environments, timeouts, caches and dependencies, and their own fused functions); each one's
``handler.py`` is imported at start, under a module name of its own.

A call to one gives the same result as a call through the host: the event and the result
go through JSON (a copy each way, as over the pipe), a failure raises the caller's
``InvocationError`` with the same outcome and text, and the callee's own timeout is
enforced (a ``SIGALRM`` timer stops it with a timeout).  While it runs, ``os.environ``
holds the callee's environment instead of the caller's.  The host is told when the call
begins and ends (``fused_begin``, ``fused_end``), so that it times the call itself and
answers the callee's dependency, cache and nested calls as the callee's.  A MemoryError is
not caught here: the two share one process, and it ends the worker as the caller's own.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

_MAX_ERROR_CHARS = 2000


class FusedTimeoutError(BaseException):
    """A fused function ran past its timeout (raised by the alarm in the handler's thread)."""


def _alarm(signum: int, frame: Any) -> None:
    raise FusedTimeoutError


def _out_of_memory(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or (
        isinstance(error, OSError) and error.errno == errno.ENOMEM
    )


class FusedFunctions:
    """The functions fused into one function of this worker, and how to call one in-process.

    ``make_context(name, deadline, cache_enabled, dependencies, fused)`` builds the
    callee's context; ``failure(name, outcome, error)`` is the exception a failed call
    raises (the worker's ``InvocationError``).
    """

    def __init__(
        self,
        declared: dict[str, Any],
        base_environment: dict[str, str],
        send: Callable[[dict[str, Any]], None],
        make_context: Callable[..., Any],
        failure: Callable[[str, str, str], Exception],
        deadlines: list[float] | None = None,
    ) -> None:
        self._specs: dict[str, dict[str, Any]] = declared
        self._base = base_environment
        self._send = send
        self._make_context = make_context
        self._failure = failure
        self._deadlines = deadlines if deadlines is not None else []
        """The deadlines of the fused calls under way, outermost first (shared by all levels)."""
        self._handlers: dict[str, Callable[..., Any] | BaseException] = {}
        self.inner: dict[str, FusedFunctions] = {}
        for name, spec in declared.items():
            self._handlers[name] = _load(name, spec["directory"])
            self.inner[name] = FusedFunctions(
                spec.get("fused", {}),
                base_environment,
                send,
                make_context,
                failure,
                self._deadlines,
            )
        if declared:
            signal.signal(signal.SIGALRM, _alarm)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def call(self, name: str, event: Any, caller_deadline: float) -> Any:
        """Run fused function ``name`` on ``event`` here and return its result, as the host would."""
        spec = self._specs[name]
        deadline = min(caller_deadline, time.monotonic() + float(spec["timeout_s"]))
        records = len(event) if isinstance(event, list) else None
        self._send({"type": "fused_begin", "name": name, "records": records})
        saved = dict(os.environ)
        outcome, error, result = "ok", "", None
        self._deadlines.append(deadline)
        self._arm()
        try:
            handler = self._handlers[name]
            if isinstance(handler, BaseException):
                raise handler
            os.environ.clear()
            os.environ.update({**self._base, **spec.get("environment", {})})
            context = self._make_context(
                name, deadline, bool(spec.get("cache")), spec["dependencies"], self.inner[name]
            )
            result = json.loads(json.dumps(handler(json.loads(json.dumps(event)), context)))
        except FusedTimeoutError:
            outcome, error = "timeout", f"timed out after {float(spec['timeout_s']):g} s"
        except BaseException as exc:  # the callee's failure is its outcome, as over the host
            if _out_of_memory(exc):
                raise
            outcome, error = "error", f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]
        finally:
            self._deadlines.pop()
            self._arm()
            os.environ.clear()
            os.environ.update(saved)
        self._send({"type": "fused_end", "outcome": outcome, "error": error})
        if outcome != "ok":
            raise self._failure(name, outcome, error)
        return result

    def _arm(self) -> None:
        """Set the alarm for the innermost fused call under way (or clear it)."""
        if not self._deadlines:
            signal.setitimer(signal.ITIMER_REAL, 0)
            return
        signal.setitimer(signal.ITIMER_REAL, max(0.001, self._deadlines[-1] - time.monotonic()))


def load(init: dict[str, Any], channel: Any, context: type, cache: type, failure: type) -> Any:
    """The functions fused into the worker's (None without any), from its ``init`` message.

    ``context``, ``cache`` and ``failure`` are the worker's ``Context``, ``Cache`` and
    ``InvocationError``: a fused function gets the same kind of context, of its own.
    """
    fused = init.get("fused") or {}
    if not fused.get("functions"):
        return None
    own = set(fused.get("keys", ()))
    base = {key: value for key, value in os.environ.items() if key not in own}

    def make(name: str, deadline: float, cached: bool, urls: dict[str, str], inner: Any) -> Any:
        """A fused function's context: its own name, cache and dependencies."""
        mine = cache(channel, enabled=cached)
        return context(name, init["memory_mb"], deadline, mine, urls, channel, inner)

    return FusedFunctions(fused["functions"], base, channel.send, make, failure)


def _load(name: str, directory: str) -> Callable[..., Any] | BaseException:
    """A fused function's ``handler``, imported from its folder; what its import raised, else."""
    module_name = f"tuner_fused_{len(sys.modules)}_{name.replace('-', '_').replace('.', '_')}"
    try:
        if directory not in sys.path:
            sys.path.append(directory)  # its own modules; the caller's come first
        spec = importlib.util.spec_from_file_location(
            module_name, os.path.join(directory, "handler.py")
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"no handler.py in {directory}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        handler: Callable[..., Any] = module.handler
        return handler
    except Exception as exc:  # the call fails with it, as a worker that cannot start would
        return RuntimeError(f"{name} did not load: {type(exc).__name__}: {exc}")
