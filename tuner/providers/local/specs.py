"""What a functions directory declares: functions, their demo traffic and named dependencies.

A functions directory holds ``functions/<name>/handler.py`` + ``function.yaml`` for each
function and an optional ``dependencies.yaml`` naming the dependencies the host starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tuner.domain.errors import ConfigError, Problem
from tuner.domain.model import FunctionConfig
from tuner.engine.yamlfiles import load_yaml_file
from tuner.providers.local.schedules import checked_schedule
from tuner.providers.local.trace_executor import TracingSpec


class TrafficSpec(BaseModel):
    """The load the traffic driver sends one function in the demo."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_per_s: float = Field(default=0.0, ge=0)
    """Direct invocations per second, as Poisson arrivals (independent, at random times),
    each with the next event of ``events``."""
    schedule: dict[str, str | int] | None = None
    """Cron fields (``second``, ``minute``, ``hour``, ``day_of_week`` ...; UTC): one more
    invocation at each time they match.  Functions with the same schedule fire together."""
    events: list[Any] = Field(default_factory=lambda: [{}])
    """Payloads sent in turn; an invocation gets ``events[i % len(events)]``."""
    records_per_s: float = Field(default=0.0, ge=0)
    """Records per second put on the function's event source queue (Poisson arrivals)."""
    backlog: int = Field(default=0, ge=0)
    """Records already waiting on the queue when the traffic starts."""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: dict[str, str | int] | None) -> dict[str, str | int] | None:
        return None if value is None else checked_schedule(value)


class FunctionSpec(BaseModel):
    """One function as declared in its ``function.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    directory: Path
    memory_mb: int = Field(default=128, ge=1)
    timeout_s: float = Field(default=3.0, gt=0)
    batch_size: int | None = Field(default=None, ge=1)
    """Records per invocation from the event source queue; None = no queue."""
    batch_window_s: float = Field(default=1.0, ge=0)
    """How long the queue waits to fill a batch before delivering a smaller one."""
    fan_out: int = Field(default=1, ge=1)
    cache_ttl_s: int = Field(default=0, ge=0)
    environment: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    owner: str = ""
    traffic: TrafficSpec = Field(default_factory=TrafficSpec)
    tracing: TracingSpec | None = None
    """How its invocations are traced; None: the provider's default."""

    def initial_config(self) -> FunctionConfig:
        """The configuration the function is deployed with before anyone tunes it."""
        return FunctionConfig(
            memory_mb=self.memory_mb,
            timeout_s=self.timeout_s,
            batch_size=self.batch_size,
            fan_out=self.fan_out,
            cache_ttl_s=self.cache_ttl_s,
            environment=dict(self.environment),
            revision="1",
        )


class DependencySpec(BaseModel):
    """A named dependency the host starts on 127.0.0.1: a slow HTTP stub or a dead port."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    down: bool = False
    """True: nothing listens on the port, so every call is refused."""


def load_functions(directory: Path) -> dict[str, FunctionSpec]:
    """Every function under ``<directory>/functions``, by name; raise ConfigError if invalid."""
    functions_root = directory / "functions"
    if not functions_root.is_dir():
        raise ConfigError([Problem(str(functions_root), None, "no functions directory")])
    specs: dict[str, FunctionSpec] = {}
    problems: list[Problem] = []
    for function_dir in sorted(p for p in functions_root.iterdir() if p.is_dir()):
        declaration = function_dir / "function.yaml"
        if not (function_dir / "handler.py").is_file() or not declaration.is_file():
            continue
        data = _read_yaml(declaration, problems)
        try:
            specs[function_dir.name] = FunctionSpec(
                name=function_dir.name, directory=function_dir, **data
            )
        except ValidationError as error:
            problems.extend(_problems(declaration, error))
    if problems:
        raise ConfigError(problems)
    return specs


def load_dependencies(directory: Path) -> dict[str, DependencySpec]:
    """The named dependencies declared in ``<directory>/dependencies.yaml`` (may be absent)."""
    declaration = directory / "dependencies.yaml"
    if not declaration.is_file():
        return {}
    problems: list[Problem] = []
    data = _read_yaml(declaration, problems)
    specs: dict[str, DependencySpec] = {}
    for name, options in data.items():
        try:
            specs[name] = DependencySpec(name=name, **(options or {}))
        except (ValidationError, TypeError) as error:
            if isinstance(error, ValidationError):
                problems.extend(_problems(declaration, error, prefix=name))
            else:
                problems.append(Problem(str(declaration), None, f"{name}: not a mapping"))
    if problems:
        raise ConfigError(problems)
    return specs


def _read_yaml(path: Path, problems: list[Problem]) -> dict[str, Any]:
    """The mapping in a YAML file, read with the size, encoding and alias limits of all input."""
    try:
        _, data, _ = load_yaml_file(path)
    except ConfigError as error:
        problems.extend(error.problems)
        return {}
    data = data or {}
    if not isinstance(data, dict):
        problems.append(Problem(str(path), None, "must be a mapping"))
        return {}
    return data


def _problems(path: Path, error: ValidationError, prefix: str = "") -> list[Problem]:
    found = []
    for detail in error.errors():
        where = ".".join(str(part) for part in detail["loc"])
        field = f"{prefix}.{where}" if prefix else where
        found.append(Problem(str(path), None, detail["msg"], field=field))
    return found
