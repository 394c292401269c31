"""Worker processes on the host side: start confined, invoke with a deadline, measure, kill."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from tuner.providers.local.channel import (
    FrameReader,
    FrameTooLargeError,
    SkippedFrame,
    frame_kind,
    send_frame,
)
from tuner.providers.local.executions import (
    Execution,
    Invoker,
    MemoryLimit,
    Remedies,
    SharedCache,
    WorkerSpec,
)
from tuner.providers.local.fusing import FusedCalls, fused_init
from tuner.providers.local.output import OutputSink
from tuner.providers.local.processes import (
    ProcessProbe,
    ProcessStatus,
    group_rss_mb,
    kill_group,
    stopped,
)
from tuner.providers.local.remedy_requests import REMEDY_REQUESTS, claimed_remedies, remedy_reply
from tuner.providers.local.sandboxing import Sandbox, remove_tmp
from tuner.providers.local.trace_messages import Profile, ProfileCaps, checked_profile
from tuner.providers.local.worker import EXIT_OUT_OF_MEMORY
from tuner.providers.local.worker_requests import (
    FROM_WORKER,
    MAX_ERROR_CHARS,
    ProtocolError,
    cache_reply,
    dependency_reply,
    nested_reply,
    parsed_frame,
    settle,
)

_STARTUP_TIMEOUT_S = 15.0


class WorkerStartError(Exception):
    """The worker process did not come up (bad handler, import error, crash)."""


_MALFORMED = (ProtocolError, FrameTooLargeError, ValueError, KeyError, TypeError, RecursionError)
"""What a frame that breaks the protocol raises (RecursionError: JSON nested too deeply)."""
_WATCH_EVERY_S = 0.25
"""How often, without a cgroup, the host adds up a busy worker's process group."""


class WorkerProcess:
    """One running worker process of one function at one configuration.

    It runs confined by ``sandbox`` (user, session, temp folder, environment) and, where
    given, in ``limit`` (a cgroup).  An invocation's outcome, peak memory and leftovers
    are measured here, from the process and the kernel, never taken from the worker's
    word: the worker can only say "returned this" or "raised that".
    """

    def __init__(
        self, spec: WorkerSpec, generation: int, limit: MemoryLimit | None, sandbox: Sandbox
    ) -> None:
        self.spec = spec
        self.generation = generation
        self.init_ms = 0.0
        self.reusable = True
        """False once the worker must not serve another invocation (it is then stopped)."""
        self._limit = limit
        self._sandbox = sandbox
        self._tmp = sandbox.private_tmp(spec.function)
        started = time.monotonic()
        output_read, output_write = os.pipe()
        try:
            self._process = sandbox.start(
                spec.function, dict(spec.environment), self._tmp, spec.directory, output_write
            )
        except BaseException:
            os.close(output_read)
            remove_tmp(self._tmp)
            raise
        finally:
            os.close(output_write)
        assert self._process.stdin is not None and self._process.stdout is not None
        self._stdin_fd = self._process.stdin.fileno()
        os.set_blocking(self._stdin_fd, False)  # a worker that stops reading cannot stall us
        self._deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        policy = sandbox.policy
        self._sink = OutputSink(output_read, spec.log_path, policy.output_bytes, policy.log_bytes)
        self._reader = FrameReader(
            self._process.stdout.fileno(),
            self._sink,
            policy.frame_bytes,
            self._watch_memory,
            kind_bytes={"trace": policy.trace_bytes},
        )
        if limit is not None:
            limit.add(self._process.pid)
        self._probe = ProcessProbe(self._process.pid)
        self._threads = 1
        self._status: ProcessStatus | None = None
        self._killed_for_memory = False
        self._next_watch = 0.0
        self._stopped = False
        self._caps: ProfileCaps | None = None
        self._remedies: Remedies | None = None
        self.supports: frozenset[str] = frozenset()  # the handler's claim (tuner_handler)
        self.runtime_mb: float | None = None  # measured once its handler is loaded
        self._start(started)

    @property
    def pid(self) -> int:
        """The process id."""
        return self._process.pid

    @property
    def alive(self) -> bool:
        """True while the process runs (asked without reaping it, so its pid stays its own)."""
        if self._process.returncode is not None:
            return False
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:
            return False

    def _start(self, started: float) -> None:
        pids_cgroup = self._limit is not None and self._limit.limits_pids
        init = {
            "type": "init",
            "function": self.spec.function,
            "directory": str(self.spec.directory),
            "memory_mb": self.spec.memory_mb,
            "timeout_s": self.spec.timeout_s,
            "cache_ttl_s": self.spec.cache_ttl_s,
            "dependencies": dict(self.spec.dependencies),
            "nproc": self._sandbox.nproc_limit(self.spec.function, pids_cgroup),
            "file_bytes": self._sandbox.policy.file_bytes,
            "library": str(self._sandbox.library),
            "fused": fused_init(self.spec),
        }
        try:
            self._send(init)
            line = self._reader.read_frame(self._deadline)
            reply = json.loads(line) if isinstance(line, bytes) else None
            ready = isinstance(reply, dict) and reply.get("type") == "ready"
        except (
            EOFError,
            BrokenPipeError,
            TimeoutError,
            FrameTooLargeError,
            ValueError,
            RecursionError,
        ):
            ready = False
        if not ready:
            self.stop()
            raise WorkerStartError(
                f"worker for {self.spec.function} did not start; see {self.spec.log_path}"
            )
        status = self._probe.read()
        self._threads = status.threads if status is not None else 1
        self.runtime_mb = status.peak_mb if status is not None else None
        self.supports = claimed_remedies(reply)
        self.init_ms = (time.monotonic() - started) * 1000

    def invoke(
        self,
        event: Any,
        cache: SharedCache,
        *,
        trace: Mapping[str, Any] | None = None,
        invoker: Invoker | None = None,
        remedies: Remedies | None = None,
        fused: FusedCalls | None = None,
    ) -> Execution:
        """Run one invocation; kill the worker and its children when it exceeds the timeout.

        ``trace``: the tracer's options of a traced invocation (its profile arrives in
        ``trace`` messages, kept in :attr:`Execution.trace`); ``invoker`` runs the handler's
        ``context.invoke`` calls, ``remedies`` its hand-over and parts (else they fail);
        ``fused`` is the host's side of its in-process calls to functions fused into it.
        """
        started = time.monotonic()
        self._deadline = deadline = started + self.spec.timeout_s
        execution = Execution(outcome="", duration_ms=0.0)
        request: dict[str, Any] = {"type": "invoke", "event": event}
        request["request_id"] = remedies.request_id if remedies is not None else ""
        self._remedies = remedies
        self._caps = None
        if trace:
            request["trace"] = {**trace, "max_bytes": self._sandbox.policy.trace_bytes}
            self._caps = ProfileCaps.of(
                trace["max_nodes"],
                trace["max_depth"],
                trace["interval_ms"],
                self.spec.timeout_s * 1000,
            )
        self._sink.begin_invocation()
        self._probe.reset_peak()
        try:
            self._send(request)
            while not execution.outcome:
                line = self._reader.read_frame(deadline)
                if line is None:
                    self._timed_out(execution)
                else:
                    self._receive(line, execution, cache, invoker, fused)
            execution.duration_ms = (time.monotonic() - started) * 1000
        except TimeoutError:
            self._timed_out(execution)
        except (EOFError, BrokenPipeError):
            self._died(execution)
            execution.duration_ms = (time.monotonic() - started) * 1000
        except _MALFORMED as error:
            self._violated(execution, error)
            execution.duration_ms = (time.monotonic() - started) * 1000
        if execution.outcome == "timeout":
            execution.duration_ms = self.spec.timeout_s * 1000
        elif self.reusable:
            self._check_leftovers()
        return execution

    def _receive(
        self,
        line: bytes | SkippedFrame,
        execution: Execution,
        cache: SharedCache,
        invoker: Invoker | None,
        fused: FusedCalls | None = None,
    ) -> None:
        """Parse one frame and act on it; a profile is checked against the caps as it comes.

        Only the latest profile is kept: the last one before a kill.
        """
        if isinstance(line, SkippedFrame):  # over its kind's cap: never parsed
            if line.kind != "trace" or self._caps is None:
                raise ProtocolError(f"a {line.kind[:40]!r} message of {line.size} bytes")
            cap = self._sandbox.policy.trace_bytes
            execution.trace = Profile(cut=[f"a profile of {line.size} bytes over {cap}"])
            return
        kind = frame_kind(line)
        if kind != "trace":
            message, spec = parsed_frame(line, kind), self.spec
            if fused is not None:  # a worker that runs functions fused into it
                if fused.handles(message, execution):
                    return
                execution, cache, invoker, spec = fused.scope(kind, execution, cache, invoker)
            self._handle(message, execution, cache, invoker, spec)
        elif self._caps is None:
            raise ProtocolError("a trace of an invocation that is not traced")
        else:
            with self._sandbox.reading_profiles:
                execution.trace = checked_profile(parsed_frame(line, kind), self._caps)

    def _handle(
        self,
        message: dict[str, Any],
        execution: Execution,
        cache: SharedCache,
        invoker: Invoker | None = None,
        spec: WorkerSpec | None = None,
    ) -> None:
        kind = message["type"]
        if kind not in FROM_WORKER:
            raise ProtocolError(f"unknown message type {str(kind)[:40]!r}")
        if kind == "dependency_get":
            max_bytes = self._sandbox.policy.frame_bytes // 2
            caller = spec or self.spec
            self._send(dependency_reply(message, caller, self._deadline, max_bytes, execution))
        elif kind == "invoke_call":
            self._send(nested_reply(message, invoker, execution))
        elif kind in REMEDY_REQUESTS:
            self._send(remedy_reply(kind, message, self._remedies))
        elif kind == "cache_get":
            self._send(cache_reply(message, cache, execution))
        elif kind == "cache_set":
            cache.set(str(message["key"]), message["value"])
        else:
            settle(message, execution)
            self._status = self._probe.read()
            execution.peak_memory_mb = self._status.peak_mb if self._status is not None else None
            if self._limit is not None and self._limit.exceeded():
                execution.outcome = "oom"  # the kernel killed a child at the cgroup limit
                execution.error = "a process of the invocation was killed at its memory limit"
                execution.peak_memory_mb = float(self.spec.memory_mb)
                self.reusable = False

    def _watch_memory(self) -> None:
        """Without a cgroup: kill the process group once its resident total passes the limit.

        Each process also has the address-space cap, so this only catches a handler that
        spreads memory over several processes, and only as often as the reader ticks.
        """
        now = time.monotonic()
        if self._limit is not None or self._killed_for_memory or now < self._next_watch:
            return
        self._next_watch = now + _WATCH_EVERY_S  # a scan of /proc: not on every tick
        if group_rss_mb(self.pid) > self.spec.memory_mb:
            self._killed_for_memory = True
            self.kill()

    def _check_leftovers(self) -> None:
        """Recycle a worker that left threads or processes running after its invocation."""
        status = self._status
        members = self._limit.members() if self._limit is not None else []
        children = [pid for pid in members if pid != self.pid]
        if status is None or status.threads <= self._threads and not children:
            return
        threads = 0 if status is None else status.threads - self._threads
        self._sink.note(
            f"[tuner: worker recycled: {threads} thread(s) and {len(children)} process(es)"
            " left running after the invocation]\n".encode()
        )
        self.stop()

    def _timed_out(self, execution: Execution) -> None:
        """The deadline passed: a timeout, unless a signal the host did not send stopped the worker."""
        status = self._probe.read()
        execution.peak_memory_mb = status.peak_mb if status is not None else None
        held = stopped(self.pid)  # read from the kernel before the kill
        self.stop()  # the whole process group and cgroup: children and threads die too
        if held:
            execution.outcome = "error"
            execution.error = "the worker was stopped by a signal tuner did not send"
            execution.counted = False
            self._sink.note(f"[tuner: {execution.error}: not a timeout of the function]\n".encode())
            return
        execution.outcome = "timeout"
        execution.error = f"timed out after {self.spec.timeout_s:g} s"

    def _died(self, execution: Execution) -> None:
        code = self._process.wait()
        if (
            code == EXIT_OUT_OF_MEMORY
            or self._killed_for_memory
            or (self._limit is not None and self._limit.exceeded())
        ):
            execution.outcome = "oom"
            execution.error = (
                "MemoryError" if code == EXIT_OUT_OF_MEMORY else "killed at its memory limit"
            )
            execution.peak_memory_mb = float(self.spec.memory_mb)
        else:
            execution.outcome = "error"
            execution.error = f"worker exited with code {code}"
        self.stop()

    def _violated(self, execution: Execution, error: Exception) -> None:
        self.stop()
        execution.outcome = "error"
        execution.error = f"protocol violation: {error}"[:MAX_ERROR_CHARS]
        self._sink.note(f"[tuner: worker stopped: {execution.error}]\n".encode())

    def kill(self) -> None:
        """Kill the process group without waiting; the thread using it sees the pipe close."""
        self.reusable = False
        members = self._limit.members() if self._limit is not None else []
        # A reaped leader's pid may be reused: signal its group only while it is unreaped.
        kill_group(members, self.pid if self._process.returncode is None else None)

    def stop(self) -> None:
        """Kill the worker with its group and children, then release its resources."""
        self.reusable = False
        if self._stopped:
            return
        self._stopped = True
        self.kill()
        if self._limit is not None:
            for _ in range(5):  # a fork racing the kill is caught on the next pass
                members = self._limit.members()
                if not members:
                    break
                kill_group(members, None)
                time.sleep(0.001)
        self._process.wait()
        self._probe.close()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()
        self._sink.close()
        if self._limit is not None:
            self._limit.remove()
            self._limit = None
        remove_tmp(self._tmp)

    def _send(self, message: dict[str, Any]) -> None:
        send_frame(self._stdin_fd, message, self._deadline)
