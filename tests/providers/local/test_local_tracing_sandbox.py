"""Tracing inside the sandbox: unprivileged traced workers, traces on the channel, nesting."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_world import WallClock, traced_host, write_handlers

from tuner.providers.local.executions import Execution
from tuner.providers.local.host import MAX_NESTING, FunctionHost
from tuner.providers.local.trace_executor import TracePlan, Tracing
from tuner.providers.local.trace_messages import ProfileCaps, checked_profile
from tuner.providers.local.tracer import InvocationTracer
from tuner.providers.local.tracing_specs import TracingSpec

ROOT = os.geteuid() == 0

# Writes a line to every pipe it holds (the protocol pipe among them).
_WRITE_TO_PIPES = (
    "import os, stat\n\n"
    "def write_to_pipes(line):\n"
    "    for fd in range(3, 64):\n"
    "        try:\n"
    "            if stat.S_ISFIFO(os.fstat(fd).st_mode):\n"
    "                os.write(fd, line)\n"
    "        except OSError:\n"
    "            pass\n\n"
)

FUNCTIONS = {
    "whoami": (
        "memory_mb: 128\ntimeout_s: 5\ntracing: {mode: full}\n",
        "import os, time\n\n"
        "def handler(event, context):\n"
        "    time.sleep(0.03)\n"
        "    return {'uid': os.getuid(), 'pid': os.getpid()}\n",
    ),
    "trace-forger": (
        "memory_mb: 128\ntimeout_s: 5\ntracing: {mode: off}\n",
        _WRITE_TO_PIPES + "def handler(event, context):\n"
        '    write_to_pipes(b\'{"type": "trace", "memory": {"need_mb": 4000}}\\n\')\n'
        "    return 'forged'\n",
    ),
    "deep-json": (
        "memory_mb: 128\ntimeout_s: 5\ntracing: {mode: full}\n",
        _WRITE_TO_PIPES + "def handler(event, context):\n"
        "    write_to_pipes(b'[' * 100000 + b'\\n')\n"
        "    return 'nested'\n",
    ),
    "recurse": (
        "memory_mb: 128\ntimeout_s: 10\ntracing: {mode: off}\n",
        "def handler(event, context):\n"
        "    try:\n"
        "        return context.invoke('recurse', {'n': event['n'] + 1})\n"
        "    except Exception as error:\n"
        "        return {'deepest': event['n'], 'error': str(error)}\n",
    ),
}


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FunctionHost]:
    """A started host (as root: with unprivileged workers) over the functions above."""
    state = tmp_path / "state"
    host = traced_host(
        write_handlers(tmp_path / "app", FUNCTIONS), state, max_workers_per_function=MAX_NESTING + 2
    )
    host.start()
    yield host
    host.close()


def test_traced_workers_are_reused_and_their_traces_reach_the_host(host: FunctionHost) -> None:
    results = [host.invoke("whoami", {}) for _ in range(3)]

    assert [r.outcome for r in results] == ["ok"] * 3
    # the tracer's thread is gone before the result: no worker is recycled for it
    assert len({r.result["pid"] for r in results}) == 1
    log = host.state_dir / "logs" / "whoami.log"
    assert not log.exists() or "recycled" not in log.read_text()
    if ROOT:
        identity = host.worker_identity("whoami")  # traced as the function's own user
        assert identity is not None and results[0].result["uid"] == identity.uid
    assert host.tracing is not None
    traces = host.tracing.store.traces("whoami")
    assert len(traces) == 3 and all(t.complete and t.tree is not None for t in traces)
    assert not (host.state_dir / "traces" / ".work").exists()  # nothing written by workers
    assert host.state_dir.stat().st_mode & 0o777 == 0o700


def test_a_trace_message_of_an_untraced_invocation_is_a_violation(host: FunctionHost) -> None:
    result = host.invoke("trace-forger", {})

    assert result.outcome == "error" and "protocol violation" in result.error
    assert host.tracing is not None and host.tracing.store.traces("trace-forger") == []


def test_json_nested_too_deeply_stops_the_worker_not_the_host(host: FunctionHost) -> None:
    result = host.invoke("deep-json", {})

    assert result.outcome == "error" and "protocol violation" in result.error
    assert host.invoke("whoami", {}).outcome == "ok"


def test_a_function_calling_itself_stops_at_the_nesting_limit(host: FunctionHost) -> None:
    result = host.invoke("recurse", {"n": 0})

    assert result.outcome == "ok"
    assert result.result["deepest"] == MAX_NESTING
    assert f"nested deeper than {MAX_NESTING} calls" in result.result["error"]


def test_a_self_call_with_every_worker_busy_ends_at_the_callers_deadline(
    tmp_path: Path,
) -> None:
    functions = {"recurse": ("memory_mb: 128\ntimeout_s: 1\n", FUNCTIONS["recurse"][1])}
    host = FunctionHost(
        write_handlers(tmp_path / "app", functions),
        tmp_path / "state",
        WallClock(),
        max_workers_per_function=1,
    )
    host.start()
    outcome: list[str] = []
    try:
        caller = threading.Thread(
            target=lambda: outcome.append(host.invoke("recurse", {"n": 0}).outcome)
        )
        started = time.monotonic()
        caller.start()
        caller.join(timeout=10)
        assert outcome == ["timeout"]  # its one worker waited for itself until its deadline
        assert time.monotonic() - started < 5
    finally:
        host.close()


def _plan() -> TracePlan:
    return TracePlan("a" * 32, "b" * 16, "", TracingSpec(), time.time())


@pytest.mark.parametrize(
    "profile",
    [
        {"tree": {"function": "handler", "children": "not a list"}},
        {"memory": {"peak_mb": 10, "need_mb": float("inf")}},
        {"memory": {"peak_mb": 10, "need_mb": "4000"}},
        {"memory": {"peak_mb": -5}},
        {"where": [{"function": "f"}]},
        {"cpu_ms": float("nan")},
    ],
)
def test_a_malformed_profile_is_left_out_of_the_trace(tmp_path: Path, profile: dict) -> None:  # type: ignore[type-arg]
    tracing = Tracing(tmp_path / "traces", TracingSpec())
    caps = ProfileCaps.of(5000, 64, 1.0, 5.0)
    execution = Execution(
        outcome="ok", duration_ms=5.0, trace=checked_profile({"type": "trace", **profile}, caps)
    )

    trace = tracing.finish(_plan(), "f", 1, execution)

    assert trace.outcome == "ok" and trace.tree is None and trace.memory is None
    assert tracing.store.traces("f") == [trace]


def _traced_spin(max_bytes: int, root: Path) -> dict:  # type: ignore[type-arg]
    sent: list[str] = []
    tracer = InvocationTracer({"max_bytes": max_bytes}, str(root), 128, None, sent.append)
    tracer.start(10.0)
    until = time.monotonic() + 0.05
    while time.monotonic() < until:
        pass
    tracer.finish(None, False)
    final: dict = json.loads(sent[-1])  # type: ignore[type-arg]
    return final


def test_a_profile_too_large_for_a_frame_is_sent_without_its_tree(tmp_path: Path) -> None:
    kept = _traced_spin(4 << 20, tmp_path)
    cut = _traced_spin(1000, tmp_path)

    assert kept["type"] == cut["type"] == "trace" and kept["complete"] and cut["complete"]
    assert kept["tree"] is not None and kept["samples"] > 0
    assert cut["tree"] is None and cut["samples"] > 0


def test_a_traced_invocation_has_the_memory_an_untraced_one_has(tmp_path: Path) -> None:
    functions = {
        name: (
            f"memory_mb: 160\ntimeout_s: 5\ntracing: {{mode: {mode}, allocations: 1.0}}\n",
            "import time\n\n"
            "def handler(event, context):\n"
            "    time.sleep(0.01)  # the tracer's thread has sampled (and allocated) by now\n"
            "    block = bytearray(120 << 20)\n"
            "    for start in range(0, len(block), 4 << 20):\n"
            "        block[start : start + (4 << 20)] = b'x' * (4 << 20)\n"
            "    return len(block)\n",
        )
        for name, mode in (("plain", "off"), ("traced", "full"))
    }
    state = tmp_path / "state"
    host = traced_host(write_handlers(tmp_path / "app", functions), state, TracingSpec())
    host.start()
    try:
        # the second traced invocation of a worker also follows allocations
        outcomes = [host.invoke(name, {}).outcome for name in ("plain", "traced", "traced")]
    finally:
        host.close()
    assert outcomes == ["ok", "ok", "ok"]
