"""What a worker asks the host to do for its handler: dependency calls and nested invocations.

The host makes both itself, so that their latency and outcome are measured, never
reported: a handler cannot blame another team's dependency or claim a call it did not
make.  Each function here turns the worker's request into the host's reply and records
the call in the invocation's :class:`~tuner.providers.local.executions.Execution`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tuner.providers.local import dependency_calls
from tuner.providers.local.executions import (
    DependencyCall,
    Execution,
    InvokeCall,
    Invoker,
    SharedCache,
    WorkerSpec,
)
from tuner.providers.local.remedy_requests import REMEDY_REQUESTS

MAX_CALLS = 1000
"""Dependency (and nested) calls recorded per invocation; later ones still run."""
CLAIMABLE_OUTCOMES = frozenset({"ok", "error"})
"""Outcomes a worker may state; oom and timeout are only ever measured by the host."""
MAX_ERROR_CHARS = 2000
FROM_WORKER = {
    "dependency_get",
    "cache_get",
    "cache_set",
    "invoke_call",
    "result",
} | REMEDY_REQUESTS
"""Messages a worker may send besides ``trace`` (a profile, read apart)."""


class ProtocolError(Exception):
    """The worker sent something the protocol does not allow; the worker is stopped."""


def parsed_frame(line: bytes, kind: str) -> dict[str, Any]:
    """The frame as JSON; a ProtocolError unless it is an object of the type it began with."""
    message = json.loads(line)
    if not isinstance(message, dict) or message.get("type") != kind:
        raise ProtocolError("a message whose type is not the one it begins with")
    return message


def dependency_reply(
    message: dict[str, Any], spec: WorkerSpec, deadline: float, max_bytes: int, execution: Execution
) -> dict[str, Any]:
    """Make the handler's dependency call, time and record it; the reply holds the body."""
    name = message["name"]
    url = spec.dependencies.get(name) if isinstance(name, str) else None
    if url is None:
        raise ProtocolError(f"a call to the undeclared dependency {str(name)[:40]!r}")
    try:
        path = dependency_calls.checked_path(message["path"])
    except ValueError as error:
        return {"type": "dependency_value", "value": None, "error": str(error)}
    answer = dependency_calls.call(url, path, deadline, max_bytes)
    if len(execution.dependency_calls) < MAX_CALLS:
        execution.dependency_calls.append(
            DependencyCall(name, time.time(), answer.latency_ms, answer.error)
        )
    return {"type": "dependency_value", "value": answer.value, "error": answer.error}


def nested_reply(
    message: dict[str, Any], invoker: Invoker | None, execution: Execution
) -> dict[str, Any]:
    """Run the handler's ``context.invoke`` through the host; the reply holds its result."""
    name = message["name"]
    if not isinstance(name, str):
        raise ProtocolError("a nested call without a function name")
    if invoker is None:
        call, result = InvokeCall(name[:200], time.time(), 0.0, "error", "no host"), None
    else:
        call, result = invoker(name, message.get("event"))
    if len(execution.invoke_calls) < MAX_CALLS:
        execution.invoke_calls.append(call)
    return {"type": "invoke_result", "outcome": call.outcome, "result": result, "error": call.error}


def cache_reply(
    message: dict[str, Any], cache: SharedCache, execution: Execution
) -> dict[str, Any]:
    """Answer the handler's ``cache_get`` from its function's cache, counting hit or miss."""
    value = cache.get(str(message["key"]))
    if value is None:
        execution.cache_misses += 1
    else:
        execution.cache_hits += 1
    return {"type": "cache_value", "value": value}


def settle(message: dict[str, Any], execution: Execution) -> None:
    """Take the worker's ``result`` for what it may say: it returned this, or raised that.

    Its ``handler_ms`` (how long the handler ran, by the worker's clock) is kept as
    evidence for traces only, never as a measurement of the invocation.
    """
    if message["outcome"] not in CLAIMABLE_OUTCOMES:
        raise ProtocolError(f"the worker may not state outcome {message['outcome']!r}")
    execution.outcome = message["outcome"]
    execution.result = message.get("result")
    execution.error = str(message.get("error", ""))[:MAX_ERROR_CHARS]
    took = message.get("handler_ms")
    if isinstance(took, int | float) and not isinstance(took, bool) and 0 <= took <= 1e9:
        execution.handler_ms = float(took)
