"""The ``local`` provider: an embedded function host that runs Python handlers for real.

``build(Settings(), clock=clock)`` gives a :class:`LocalProvider` over the functions of
``examples/local``; call ``start()`` before the loop and ``close()`` after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from tuner.domain.errors import ConfigError, Problem
from tuner.domain.ports import Clock
from tuner.providers.local.cgroups import memory_limits
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.http_api import EndpointLimits
from tuner.providers.local.identities import DEFAULT_UIDS
from tuner.providers.local.probing import ProbePolicy
from tuner.providers.local.provider import LOCAL_LIMITS, LocalProvider
from tuner.providers.local.sandboxing import SYSTEM_PYTHON, SandboxPolicy
from tuner.providers.local.trace_executor import Tracing
from tuner.providers.local.tracing_specs import TracingSpec

if TYPE_CHECKING:
    from tuner.trace.otel import OtlpForwarder

__all__ = ["LOCAL_LIMITS", "LocalProvider", "Settings", "build", "resolve_functions_dir"]

_REPOSITORY_ROOT = Path(__file__).resolve().parents[3]


class Settings(BaseModel):
    """Options of the local provider in ``tuner.yaml`` (``providers: [{type: local}]``)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["local"] = "local"
    functions_dir: Path = Path("examples/local")
    """Holds ``functions/<name>/`` and ``dependencies.yaml``; relative to the current
    directory, else to the checkout tuner is installed from."""
    state_dir: Path = Path(".tuner")
    """Where the host keeps ``local.sqlite`` (invocations, deployments) and worker logs."""
    http_port: int | None = Field(default=0, ge=0, le=65535)
    """Port of the invoke endpoint on 127.0.0.1; 0 picks a free one, None turns it off."""
    traffic: bool = True
    """Send every function the demo traffic its ``function.yaml`` declares."""
    max_workers_per_function: int = Field(default=8, ge=1, le=64)
    cgroups: bool = True
    """Also enforce memory with a cgroup v1 limit where one can be created."""
    reset: bool = False
    """Redeploy every function as its ``function.yaml`` says, dropping tuned settings."""
    tracing: TracingSpec = Field(default_factory=TracingSpec)
    """How invocations are traced unless a ``function.yaml`` says otherwise; traces are
    kept in ``<state_dir>/traces``."""
    otlp_endpoint: str | None = None
    """Also send every trace to this OTLP/HTTP collector, e.g.
    ``http://localhost:4318/v1/traces`` (needs ``tuner[tracing]``)."""
    worker_uids: tuple[int, int] | None = DEFAULT_UIDS
    """The range (first, last) each function's own user id is taken from when tuner runs
    as root; null keeps root (not advised)."""
    worker_python: str = SYSTEM_PYTHON
    """The interpreter for workers when the worker user cannot run tuner's own."""
    pids_max: int = Field(default=64, ge=4, le=4096)
    """Processes and threads one worker may have, children included."""
    output_kb: int = Field(default=1024, ge=1)
    """What one invocation may print (stdout + stderr) before it is cut with a marker."""
    log_mb: int = Field(default=16, ge=1)
    """Size of a function's log before it is rotated to ``<name>.log.1``."""
    file_mb: int = Field(default=512, ge=1)
    """The largest file a worker may write (in its temporary folder or elsewhere)."""
    invoke_rate_per_s: float = Field(default=50.0, gt=0)
    """Invocations (or record posts) per second and function the endpoint accepts."""
    max_body_kb: int = Field(default=6144, ge=1)
    """The largest request body the endpoint reads."""
    probe: ProbePolicy = Field(default_factory=ProbePolicy)
    """Re-run an invocation killed for memory once at a higher limit, to measure its need."""


def resolve_functions_dir(path: Path) -> Path:
    """The functions directory: as given, relative to the cwd, else to the repository root."""
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, _REPOSITORY_ROOT / path]
    for candidate in candidates:
        if (candidate / "functions").is_dir():
            return candidate.resolve()
    raise ConfigError(
        [
            Problem(
                str(path),
                None,
                "no functions directory here (looked in "
                + ", ".join(str(c) for c in candidates)
                + ")",
                field="functions_dir",
            )
        ]
    )


def _forwarder(settings: Settings) -> OtlpForwarder | None:
    if not settings.otlp_endpoint:
        return None
    from tuner.trace.otel import OtlpForwarder

    return OtlpForwarder(settings.otlp_endpoint)


def build(settings: Settings, *, clock: Clock) -> LocalProvider:
    """A local provider for the settings; nothing runs until its ``start()``."""
    host = FunctionHost(
        resolve_functions_dir(settings.functions_dir),
        settings.state_dir,
        clock,
        max_workers_per_function=settings.max_workers_per_function,
        memory_limits=memory_limits(pids_max=settings.pids_max) if settings.cgroups else None,
        sandbox=SandboxPolicy(
            uids=settings.worker_uids,
            python=settings.worker_python,
            pids_max=settings.pids_max,
            output_bytes=settings.output_kb * 1024,
            log_bytes=settings.log_mb * 1024 * 1024,
            file_bytes=settings.file_mb * 1024 * 1024,
        ),
        reset=settings.reset,
        tracing=Tracing(
            settings.state_dir / "traces", settings.tracing, forward=_forwarder(settings)
        ),
        probe=settings.probe,
    )
    limits = EndpointLimits(
        body_bytes=settings.max_body_kb * 1024,
        invoke_rate_per_s=settings.invoke_rate_per_s,
        invoke_burst=max(1, round(settings.invoke_rate_per_s * 2)),
    )
    return LocalProvider(
        host,
        clock,
        http_port=settings.http_port,
        traffic=settings.traffic,
        endpoint_limits=limits,
    )
