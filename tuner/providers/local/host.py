"""The function host: runs the functions of one directory in worker processes and records them."""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from tuner.domain.model import FunctionConfig
from tuner.domain.ports import Clock
from tuner.providers.local.caching import TtlCache
from tuner.providers.local.chain_store import ChainStore, LinkTask
from tuner.providers.local.decomposing import Decomposition
from tuner.providers.local.executions import Execution, InvokeCall, LimitFactory, WorkerSpec
from tuner.providers.local.fusing import FusedCalls, Fusions, FusionServices
from tuner.providers.local.identities import Identity
from tuner.providers.local.invocations import Caller, InvocationResult, merge
from tuner.providers.local.pool import WorkerPool
from tuner.providers.local.probing import ProbePolicy, Prober
from tuner.providers.local.queues import EventSourceQueue
from tuner.providers.local.recording import Records
from tuner.providers.local.replicas import routed
from tuner.providers.local.sandboxing import Sandbox, SandboxPolicy, private_folder
from tuner.providers.local.specs import FunctionSpec, load_dependencies, load_functions
from tuner.providers.local.stubs import DependencyStubs
from tuner.providers.local.trace_executor import TraceParent, TracePlan, Tracing, new_span_id
from tuner.providers.local.worker_processes import WorkerStartError
from tuner_handler.envelopes import link_envelope
from tuner_handler.parts import slices

log = structlog.get_logger(__name__)

MAX_NESTING = 8
"""How deep ``context.invoke`` calls may nest (a function calling itself included)."""


class UnknownFunctionError(KeyError):
    """No function of that name is deployed on the host."""


class FunctionHost:
    """Runs each function of a directory in worker processes, with its live configuration.

    Configurations persist in ``<state_dir>/local.sqlite``: the first start deploys each
    function as its ``function.yaml`` says; later starts keep the configuration that was
    last deployed, unless ``reset`` redeploys every function from its file (the revision
    keeps counting).  Every invocation, dependency call and deployment is recorded there.
    """

    def __init__(
        self,
        functions_dir: Path,
        state_dir: Path,
        clock: Clock,
        *,
        max_workers_per_function: int = 8,
        memory_limits: LimitFactory | None = None,
        sandbox: SandboxPolicy | None = None,
        reset: bool = False,
        tracing: Tracing | None = None,
        probe: ProbePolicy | None = None,
    ) -> None:
        self.functions_dir = functions_dir
        self.tracing = tracing
        """Chooses and stores traced invocations; None: nothing is traced."""
        self.state_dir = state_dir
        private_folder(state_dir)
        self.specs: dict[str, FunctionSpec] = load_functions(functions_dir)
        self._clock = clock
        self._max_workers = max_workers_per_function
        self._memory_limits = memory_limits
        self._sandbox = Sandbox(sandbox or SandboxPolicy(), self.specs, state_dir)
        self._sandbox.worker_slots = max_workers_per_function + 1  # + a probe
        self.prober = Prober(
            probe or ProbePolicy(enabled=False), clock, memory_limits, self._sandbox
        )
        """Re-runs an invocation killed for memory at a higher limit (see probing.py)."""
        self._directories: dict[str, Path] = {}
        self.dependency_specs = load_dependencies(functions_dir)
        self._stubs = DependencyStubs(self.dependency_specs)
        self.records = Records(state_dir / "local.sqlite")
        self._configs: dict[str, FunctionConfig] = {}
        self._pools: dict[str, WorkerPool] = {}
        self._caches: dict[str, TtlCache] = {}
        folders = {name: spec.directory for name, spec in self.specs.items()}
        self.fusions = Fusions(state_dir, self._sandbox, folders)
        """Which functions run inside which caller's workers (see fusing.py)."""
        self._fusion = FusionServices(
            self.records,
            tracing,
            self._caches,
            lambda name: self.specs[name].tracing,
            lambda plan, depth, deadline: functools.partial(self._nested, plan, depth, deadline),
            clock,
            lambda: self._closing,
        )
        self._queues: dict[str, EventSourceQueue] = {}
        self._deploying = threading.Lock()
        self._closing = False
        self._load_configs(reset)
        self.decomposition = Decomposition(
            ChainStore(state_dir / "local.sqlite"),
            clock,
            self.specs,
            self._run_link,
            max(1, max_workers_per_function // 2),
        )
        """Chains (handover) and splits: the requests of tuner_handler, and what follows."""

    @property
    def dependency_urls(self) -> dict[str, str]:
        """Base URL of every started dependency, by name."""
        return dict(self._stubs.urls)

    def start(self) -> None:
        """Start the dependencies, the worker pools and the event source queues."""
        sandbox = self._sandbox
        self._stubs.start()
        for name, spec in self.specs.items():
            config = self._configs[name]
            self._directories[name] = sandbox.reachable(spec.directory, name)
            self._caches[name] = TtlCache(self._clock, config.cache_ttl_s or 0)
            self._pools[name] = WorkerPool(
                self._worker_spec(spec, config), self._max_workers, self._memory_limits, sandbox
            )
            if config.batch_size is not None:
                queue = EventSourceQueue(
                    name,
                    batch_size=functools.partial(self._batch_size, name),
                    batch_window_s=spec.batch_window_s,
                    deliver=functools.partial(self.invoke, name),
                    max_in_flight=self._max_workers,
                )
                queue.start()
                self._queues[name] = queue
        self.decomposition.start()
        log.info("local host started", functions=sorted(self.specs), state_dir=str(self.state_dir))

    def _batch_size(self, name: str) -> int:
        return self._configs[name].batch_size or 1

    def _load_configs(self, reset: bool) -> None:
        now = self._clock.now()
        for name, spec in self.specs.items():
            stored = self.records.live_config(name)
            config = spec.initial_config()
            if stored is not None and reset and stored != config:
                config = replace(config, revision=str(int(stored.revision) + 1))
                self.records.deploy(name, stored, config, now)
            elif stored is not None:
                config = stored
            else:
                self.records.deploy(name, None, config, now)
            self._configs[name] = config

    def close(self) -> None:
        """Stop the queues, workers and dependencies, then close the records."""
        self._closing = True
        self.prober.close()
        self.decomposition.stop()
        for pool in self._pools.values():
            pool.close()  # a link cut short runs again at the next start
        self.decomposition.close()
        for queue in self._queues.values():
            queue.stop()
        self._stubs.close()
        self.records.close()
        self._sandbox.close()
        close = getattr(self.tracing.forward if self.tracing else None, "close", None)
        if close is not None:
            close()  # send the traces still queued for a collector

    def worker_identity(self, name: str) -> Identity | None:
        """The user a function's workers run as (its own); None when they keep the host's."""
        return self._sandbox.identity(name)

    def warm_workers(self, name: str) -> list[int]:
        """Process ids of a function's idle warm workers (empty before start)."""
        pool = self._pools.get(name)
        return [] if pool is None else pool.idle_pids()

    def functions(self) -> list[str]:
        """Names of the deployed functions."""
        return sorted(self.specs)

    def config(self, name: str) -> FunctionConfig:
        """The live configuration of a function."""
        try:
            return self._configs[name]
        except KeyError:
            raise UnknownFunctionError(name) from None

    def deploy(self, name: str, config: FunctionConfig) -> FunctionConfig:
        """Make ``config`` live for every new invocation; running ones finish on the old one.

        Returns the deployed configuration with the next revision.
        """
        with self._deploying:
            before = self.config(name)
            after = replace(config, revision=str(int(before.revision) + 1))
            self.records.deploy(name, before, after, self._clock.now())
            self._configs[name] = after
            if name in self._pools:  # started: new invocations get the new configuration
                self._caches[name].configure(after.cache_ttl_s or 0)
                self._pools[name].configure(self._worker_spec(self.specs[name], after))
                for caller in self.fusions.above(name):  # the callers it runs in, fused or not
                    self._pools[caller].configure(self._worker_spec_of(caller))
            if before.fused and not after.fused:
                self.fusions.unpair(name)
        log.info("function redeployed", function=name, revision=after.revision)
        return after

    def enqueue(self, name: str, records: list[Any]) -> int:
        """Put records on a function's event source queue; returns how many were accepted."""
        self.config(name)
        queue = self._queues.get(name)
        if queue is None:
            raise ValueError(f"function {name} has no event source queue (no batch_size)")
        return queue.put(records)

    def queued(self, name: str) -> int:
        """Records waiting on a function's queue."""
        queue = self._queues.get(name)
        return 0 if queue is None else len(queue)

    def invoke(self, name: str, event: Any, *, caller: Caller | None = None) -> InvocationResult:
        """Invoke a function; a list event is split over ``fan_out`` parallel invocations.

        ``caller`` is the invocation that made this call (``context.invoke``).
        """
        fan_out = self.config(name).fan_out or 1
        started = time.monotonic()
        hosts_split = not self.decomposition.splits_itself(name)  # else tuner_handler splits
        if fan_out > 1 and isinstance(event, list) and len(event) > 1 and hosts_split:
            executions = self._fan_out(name, slices(event, fan_out), caller)
        else:
            executions = [self._invoke_once(name, event, caller)]
        failed = next((e for e in executions if e.outcome != "ok"), None)
        return InvocationResult(
            function=name,
            outcome="ok" if failed is None else failed.outcome,
            result=merge([e.result for e in executions])
            if len(executions) > 1
            else executions[0].result,
            error="" if failed is None else failed.error,
            duration_ms=(time.monotonic() - started) * 1000,
            invocations=len(executions),
        )

    def _fan_out(self, name: str, parts: list[Any], caller: Caller | None) -> list[Execution]:
        executions: list[Execution | None] = [None] * len(parts)

        def run(index: int) -> None:
            """Run one part of the fan-out."""
            executions[index] = self._invoke_once(name, parts[index], caller)

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(parts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [e for e in executions if e is not None]

    def _run_link(self, task: LinkTask) -> Execution:
        """Run one link of a chain (the chain runner calls it)."""
        ref = task.ref
        envelope = link_envelope(ref.chain, ref.link, task.state, task.event)
        return self._invoke_once(task.function, envelope, link=task)

    def _invoke_once(
        self, name: str, event: Any, caller: Caller | None = None, link: LinkTask | None = None
    ) -> Execution:
        start = self._clock.now()
        config = self.config(name)
        revision = int(config.revision)
        session = self.decomposition.session(name, event, link, config)
        plan = None
        if self.tracing is not None:
            parent = caller.parent if caller is not None else None
            plan = self.tracing.plan(name, self.specs[name].tracing, revision, parent)
        depth = caller.depth if caller is not None else 0
        cold, init_ms = False, None
        spec: WorkerSpec | None = None
        try:
            wait_until = caller.deadline if caller is not None else None
            with self._pools[name].worker(wait_until) as (process, cold):
                init_ms = process.init_ms if cold else None
                revision, spec = process.spec.revision, process.spec
                deadline = time.monotonic() + process.spec.timeout_s
                if cold:
                    self.decomposition.note(name, process.supports, process.runtime_mb)
                session.run_parts = functools.partial(self._parts, name, depth + 1, deadline)
                fused = (
                    FusedCalls(spec, self._fusion, plan, depth, deadline) if spec.fused else None
                )
                execution = process.invoke(
                    event,
                    self._caches[name],
                    trace=plan.options() if plan is not None else None,
                    invoker=functools.partial(self._nested, plan, depth + 1, deadline),
                    remedies=session,
                    fused=fused,
                )
                if fused is not None:
                    fused.close(execution)
        except WorkerStartError as error:
            cold = True
            execution = Execution(outcome="error", duration_ms=0.0, error=str(error))
        self._record(name, revision, start, event, execution, cold, init_ms)
        if not self._closing:
            self.decomposition.finish(session, execution)
        if execution.outcome == "oom" and spec is not None and not self._closing:
            self.prober.after(spec, event, execution)
        if (
            plan is not None
            and self.tracing is not None
            and execution.counted
            and not self._closing
        ):
            self.tracing.finish(plan, name, revision, execution)
        return execution

    def _parts(self, name: str, depth: int, deadline: float, events: list[Any]) -> list[Execution]:
        """Run a split's parts as invocations of the function, in parallel (tuner_handler);
        parts that split again count as nested calls (at most :data:`MAX_NESTING` deep)."""
        if depth > MAX_NESTING:
            error = f"parts nested deeper than {MAX_NESTING} calls"
            return [Execution(outcome="error", duration_ms=0.0, error=error) for _ in events]
        return self._fan_out(name, events, Caller(None, depth, deadline))

    def _nested(
        self, plan: TracePlan | None, depth: int, deadline: float, callee: str, event: Any
    ) -> tuple[InvokeCall, Any]:
        """Run a handler's ``context.invoke`` through the host (traced when its caller is).

        A call nested deeper than :data:`MAX_NESTING` fails without running, and a callee
        with no free worker before the caller's deadline fails too (a function calling
        itself would otherwise wait for its own workers forever).
        """
        span_id = new_span_id()
        parent = TraceParent(plan.trace_id, span_id) if plan is not None else None
        if depth > MAX_NESTING:
            error = f"context.invoke nested deeper than {MAX_NESTING} calls"
            return InvokeCall(callee, time.time(), 0.0, "error", error, span_id), None
        started = time.monotonic()
        try:
            result = self.invoke(callee, event, caller=Caller(parent, depth, deadline))
        except UnknownFunctionError:
            callee = callee[:200]
            call = InvokeCall(callee, time.time(), 0.0, "error", f"no function {callee!r}", span_id)
            return call, None
        latency_ms = (time.monotonic() - started) * 1000
        call = InvokeCall(callee, time.time(), latency_ms, result.outcome, result.error, span_id)
        return call, result.result

    def _record(
        self,
        name: str,
        revision: int,
        start: float,
        event: Any,
        execution: Execution,
        cold: bool,
        init_ms: float | None,
    ) -> None:
        if self._closing or not execution.counted:
            return  # cut short by shutdown or stopped from outside: nothing of the function
        records = len(event) if isinstance(event, list) else None
        end = self._clock.now()
        self.records.add_execution(name, revision, start, end, records, execution, cold, init_ms)

    def _worker_spec(self, spec: FunctionSpec, config: FunctionConfig) -> WorkerSpec:
        return WorkerSpec(
            function=spec.name,
            directory=self._directories.get(spec.name, spec.directory),
            memory_mb=config.memory_mb,
            timeout_s=config.timeout_s or spec.timeout_s,
            cache_ttl_s=config.cache_ttl_s or 0,
            environment={
                **config.environment,
                **self.decomposition.environment(spec.name, config),
            },
            dependencies=routed(self._stubs.urls, self.dependency_specs, bool(config.near_replica)),
            log_path=self.state_dir / "logs" / f"{spec.name}.log",
            revision=int(config.revision),
            fused=self.fusions.specs(spec.name, self._fused_spec),
        )

    def _worker_spec_of(self, name: str) -> WorkerSpec:
        return self._worker_spec(self.specs[name], self._configs[name])

    def _fused_spec(self, name: str) -> WorkerSpec | None:
        """A paired function's spec while it is fused (its ``fused`` knob is 1), else None."""
        return self._worker_spec_of(name) if self._configs[name].fused else None
