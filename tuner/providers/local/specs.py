"""What a functions directory declares: functions, their demo traffic and named dependencies.

A functions directory holds ``functions/<name>/handler.py`` + ``function.yaml`` for each
function and an optional ``dependencies.yaml`` naming the dependencies the host starts.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tuner.domain.errors import ConfigError, Problem
from tuner.domain.model import FunctionConfig, Limits
from tuner.engine.yamlfiles import load_yaml_file
from tuner.providers.local.schedules import checked_schedule
from tuner.providers.local.tracing_specs import TracingSpec

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""A function's name (its folder's): letters, digits, ``.``, ``_`` and ``-``, at most 64."""


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


class ChainSpec(BaseModel):
    """How the host runs a function's chains (tuner_handler's handover)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_links: int = Field(default=10, ge=1, le=1000)
    """The most invocations one chain may take; a link asking for more fails the chain."""
    retries: int = Field(default=2, ge=0, le=10)
    """How often a failed link runs again from its state before the chain fails."""


class CeilingSpec(BaseModel):
    """A function's own ceilings under the host's: tuner never goes above them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory_max_mb: int | None = Field(default=None, ge=64)
    timeout_max_s: float | None = Field(default=None, gt=0)

    def applied(self, limits: Limits) -> Limits:
        """The host's limits lowered to these ceilings."""
        return replace(
            limits,
            memory_max_mb=min(limits.memory_max_mb, self.memory_max_mb or limits.memory_max_mb),
            timeout_max_s=min(limits.timeout_max_s, self.timeout_max_s or limits.timeout_max_s),
        )


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
    split_above_kb: int = Field(default=0, ge=0)
    """Events larger than this many KB split into parts of about this size (0: off), for a
    handler that uses tuner_handler's split."""
    cache_ttl_s: int = Field(default=0, ge=0)
    handover_s: float = Field(default=0.0, ge=0)
    """Handover margin in seconds (0: off), for a handler that uses tuner_handler's handover."""
    chain: ChainSpec = Field(default_factory=ChainSpec)
    limits: CeilingSpec = Field(default_factory=CeilingSpec)
    """Ceilings of this function (e.g. the longest a job may hold a worker)."""
    environment: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    owner: str = ""
    traffic: TrafficSpec = Field(default_factory=TrafficSpec)
    tracing: TracingSpec | None = None
    """How its invocations are traced; None: the provider's default."""

    @model_validator(mode="after")
    def _within_ceilings(self) -> FunctionSpec:
        """Memory and timeout at most the function's own ceilings."""
        ceiling = self.limits
        if ceiling.memory_max_mb is not None and self.memory_mb > ceiling.memory_max_mb:
            raise ValueError(f"memory_mb {self.memory_mb} is over limits.memory_max_mb")
        if ceiling.timeout_max_s is not None and self.timeout_s > ceiling.timeout_max_s:
            raise ValueError(f"timeout_s {self.timeout_s:g} is over limits.timeout_max_s")
        if self.handover_s >= self.timeout_s:
            raise ValueError("handover_s must be shorter than timeout_s")
        return self

    def initial_config(self) -> FunctionConfig:
        """The configuration the function is deployed with before anyone tunes it."""
        return FunctionConfig(
            memory_mb=self.memory_mb,
            timeout_s=self.timeout_s,
            batch_size=self.batch_size,
            fan_out=self.fan_out,
            split_above_kb=self.split_above_kb,
            cache_ttl_s=self.cache_ttl_s,
            handover_s=self.handover_s,
            fused=0,
            near_replica=0,
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
    distance_ms: float = Field(default=0.0, ge=0)
    """The network round trip to where it runs, paid on every call (added to its latency)."""
    replicas: tuple[str, ...] = ()
    """Other dependencies of this file that hold a copy of its data (read replicas)."""


def load_functions(directory: Path) -> dict[str, FunctionSpec]:
    """Every function under ``<directory>/functions``, by name; raise ConfigError if invalid."""
    functions_root = directory / "functions"
    if not functions_root.is_dir():
        raise ConfigError([Problem(str(functions_root), None, "no functions directory")])
    specs: dict[str, FunctionSpec] = {}
    problems: list[Problem] = []
    for function_dir in sorted(p for p in functions_root.iterdir() if p.is_dir()):
        declaration = function_dir / "function.yaml"
        has_handler, has_declaration = (
            (function_dir / "handler.py").is_file(),
            declaration.is_file(),
        )
        if function_dir.name.startswith((".", "__")) or not (has_handler or has_declaration):
            continue  # not a function: hidden, a cache, shared code
        refusal = _refusal(function_dir.name, has_handler, has_declaration)
        if refusal:
            problems.append(Problem(str(function_dir), None, refusal))
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


def _refusal(name: str, has_handler: bool, has_declaration: bool) -> str:
    """Why a function folder cannot be loaded, or "" when it can."""
    if not FUNCTION_NAME.match(name):
        return (
            f"{name!r} is not a function name: use letters, digits, '.', '_' and '-',"
            " beginning with a letter or digit, at most 64"
        )
    if not has_handler:
        return "has a function.yaml but no handler.py"
    if not has_declaration:
        return "has a handler.py but no function.yaml"
    return ""


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
    for spec in specs.values():
        for replica in spec.replicas:
            if replica not in specs or replica == spec.name:
                why = "is itself" if replica == spec.name else "is not declared in this file"
                problems.append(
                    Problem(str(declaration), None, f"replica {replica!r} {why}", field=spec.name)
                )
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
