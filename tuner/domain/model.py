"""Frozen value types shared by every part of tuner.

This module is the innermost layer: it imports the standard library only, and every
other module speaks in these types.  Times are POSIX seconds (float), memory is in MB,
durations in facts are in milliseconds and timeouts in configuration are in seconds.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Union

# A recursive alias needs Union with a string forward reference.
FactValue = Union[float, str, bool, None, Mapping[str, "FactValue"]]  # noqa: UP007
"""A value a rule condition can see: numbers are always floats, unknown is None."""

_EMPTY: Mapping[str, str] = MappingProxyType({})


def new_id() -> str:
    """A new random identifier for a decision or an intent: 32 hex digits, as a UUID4's.

    Straight from the system's random source: ``uuid.uuid4()`` builds a UUID object
    first and costs four times as much, for each of thousands of decisions a cycle.
    """
    return os.urandom(16).hex()


def fact_number(facts: Mapping[str, Any], name: str) -> float | None:
    """A numeric fact as a float; None when it is missing, not a number, or a bool."""
    value = facts.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def extra_number(facts: Mapping[str, Any], name: str) -> float | None:
    """A provider measurement (``extra.<name>``) as a float; None when it is missing."""
    extra = facts.get("extra")
    return fact_number(extra, name) if isinstance(extra, Mapping) else None


def trace_ids(facts: Mapping[str, Any]) -> tuple[str, ...]:
    """The trace ids in a window's facts (``evidence.trace_ids``), the ones cited first."""
    evidence = facts.get("evidence")
    text = evidence.get("trace_ids") if isinstance(evidence, Mapping) else None
    return tuple(text.split()) if isinstance(text, str) else ()


class Mode(enum.StrEnum):
    """How far tuner may go: record only, record and tell people, or change functions."""

    OBSERVE = "observe"
    RECOMMEND = "recommend"
    APPLY = "apply"

    @property
    def rank(self) -> int:
        """Order of the modes, so the stricter of two modes is the smaller rank."""
        return _MODE_RANK[self]

    def stricter(self, other: Mode | None) -> Mode:
        """The stricter of this mode and another (None: no other mode)."""
        return self if other is None or self.rank <= other.rank else other


_MODE_RANK = {Mode.OBSERVE: 0, Mode.RECOMMEND: 1, Mode.APPLY: 2}


class Severity(enum.StrEnum):
    """How urgent a finding is for the people who own the function."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Knob(enum.StrEnum):
    """A setting of a function that tuner can change."""

    MEMORY_MB = "memory_mb"
    TIMEOUT_S = "timeout_s"
    BATCH_SIZE = "batch_size"
    FAN_OUT = "fan_out"
    CONCURRENCY = "concurrency"
    CACHE_TTL_S = "cache_ttl_s"
    """Cache time-to-live in seconds; 0 means the cache is off."""
    TRACING = "tracing"
    """Share of invocations traced for a while above the function's own tracing setting
    (the ``trace`` action); 0 means none.  It goes back to 0 by itself."""
    MEMORY_TRIAL_MB = "memory_trial_mb"
    """Memory tried on a share of the real traffic for a while, beside the function's own
    (the ``try-memory`` action); 0 means none.  It goes back to 0 by itself."""
    HANDOVER_S = "handover_s"
    """Seconds before its timeout at which an invocation hands its state over to a fresh
    invocation of the function (a chain, see tuner_handler); 0 means handover is off."""
    SPLIT_ABOVE_KB = "split_above_kb"
    """An event larger than this many KB is split into parts of at most about this size,
    each run as an invocation of its own (tuner_handler's split); 0 means off.  Only the
    rare large events pay for the split, where ``fan_out`` splits every event."""
    FUSED = "fused"
    """1: the function runs inside its one caller's worker, an in-process call (fused); 0: on
    its own."""
    NEAR_REPLICA = "near_replica"
    """1: the function's calls to a far dependency go to its nearest declared replica; 0: to
    the dependency itself."""
    ZONE_AFFINITY = "zone_affinity"
    """Weight (1 to 100) of a preferred affinity towards the zone of the function's far
    dependency; 0: none."""


INTEGER_KNOBS = frozenset(
    {
        Knob.MEMORY_MB,
        Knob.MEMORY_TRIAL_MB,
        Knob.BATCH_SIZE,
        Knob.FAN_OUT,
        Knob.SPLIT_ABOVE_KB,
        Knob.CONCURRENCY,
        Knob.CACHE_TTL_S,
        Knob.FUSED,
        Knob.NEAR_REPLICA,
        Knob.ZONE_AFFINITY,
    }
)
"""Knobs whose values are whole numbers."""


@dataclass(frozen=True, slots=True, order=True)
class FunctionRef:
    """Names one function: the provider, a scope (region, namespace, host) and its name."""

    provider: str
    name: str
    scope: str = ""
    key: str = field(init=False, repr=False, compare=False)
    """A stable, human-readable identifier, e.g. ``aws:eu-west-1/resize``."""
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A reference is a dictionary key in every cycle, many times over: its key and
        # hash are computed once.
        scope = f"{self.scope}/" if self.scope else ""
        object.__setattr__(self, "key", f"{self.provider}:{scope}{self.name}")
        object.__setattr__(self, "_hash", hash((self.provider, self.name, self.scope)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[FunctionRef], tuple[str, str, str]]:
        # Rebuilt from its parts, so a copy in another process hashes with that process's seed.
        return FunctionRef, (self.provider, self.name, self.scope)

    def __str__(self) -> str:
        return self.key

    @classmethod
    def parse(cls, key: str) -> FunctionRef:
        """Inverse of :attr:`key`."""
        provider, _, rest = key.partition(":")
        scope, _, name = rest.rpartition("/")
        return cls(provider=provider, name=name, scope=scope)


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """The tunable configuration of a function as the provider reports it.

    A knob that the function does not have is None (a Lambda without an event source
    has no batch size; a Deployment has no timeout).
    """

    memory_mb: int
    timeout_s: float | None = None
    batch_size: int | None = None
    fan_out: int | None = None
    concurrency: int | None = None
    cache_ttl_s: int | None = None
    handover_s: float | None = None
    """The handover margin (0: off); None where the function cannot hand over."""
    split_above_kb: int | None = None
    """The size above which an event is split (0: off); None where the function cannot split."""
    tracing: float | None = field(default=None, compare=False)
    """Share of invocations traced for a while on top of the function's own setting (0:
    none); None where the provider cannot switch tracing on."""
    memory_trial_mb: int | None = field(default=None, compare=False)
    """Memory tried on a share of the real traffic for a while (0: none); None where the
    provider cannot try a size on part of the traffic."""
    fused: int | None = None
    """1 while the function runs inside its caller's worker; None where it cannot be fused."""
    near_replica: int | None = None
    """1 while it calls the nearest replica of a far dependency; None where none can be chosen."""
    zone_affinity: int | None = None
    """The weight of tuner's affinity towards its dependency's zone; None where there is none."""
    environment: Mapping[str, str] = field(default_factory=lambda: _EMPTY, compare=False)
    revision: str = field(default="", compare=False)
    """Optimistic-concurrency token: Lambda RevisionId, Kubernetes resourceVersion."""

    def get(self, knob: Knob) -> float | int | None:
        """The current value of one knob."""
        value: float | int | None = getattr(self, knob.value)
        return value

    def with_changes(self, changes: Mapping[Knob, float | int]) -> FunctionConfig:
        """A copy with the given knobs set."""
        values: dict[str, Any] = {k.value: v for k, v in changes.items()}
        return replace(self, **values)


@dataclass(frozen=True, slots=True)
class Limits:
    """What a provider allows for each knob; planned changes are clamped into these."""

    memory_min_mb: int = 128
    memory_max_mb: int = 10_240
    memory_step_mb: int = 1
    timeout_min_s: float = 1.0
    timeout_max_s: float = 900.0
    batch_min: int = 1
    batch_max: int = 10_000
    fan_out_max: int = 64
    """The most parts one invocation may split into (``fan_out`` and ``split_above_kb``)."""
    split_above_max_kb: int = 6 * 1024
    """The largest split threshold: a part travels as one synchronous invocation's event."""
    concurrency_min: int = 1
    concurrency_max: int = 1000
    cache_ttl_max_s: int = 86_400
    cpu_scales_with_memory: bool = True
    """True where more memory also buys more CPU (Lambda), so a slow function may speed up."""

    def range(self, knob: Knob) -> tuple[float, float] | None:
        """The lowest and highest value allowed for a knob; None where it has no range (tracing)."""
        ranges: dict[Knob, tuple[float, float]] = {
            Knob.MEMORY_MB: (self.memory_min_mb, self.memory_max_mb),
            Knob.TIMEOUT_S: (self.timeout_min_s, self.timeout_max_s),
            Knob.BATCH_SIZE: (self.batch_min, self.batch_max),
            Knob.FAN_OUT: (1, self.fan_out_max),
            Knob.CONCURRENCY: (self.concurrency_min, self.concurrency_max),
            Knob.CACHE_TTL_S: (0, self.cache_ttl_max_s),
            Knob.HANDOVER_S: (0, self.timeout_max_s),
            Knob.SPLIT_ABOVE_KB: (0, self.split_above_max_kb),
            Knob.FUSED: (0, 1),
            Knob.NEAR_REPLICA: (0, 1),
            Knob.ZONE_AFFINITY: (0, 100),
        }
        return ranges.get(knob)

    def clamp(self, knob: Knob, value: float) -> float | int:
        """The allowed value nearest to ``value``: memory rounded up to its step, counts whole."""
        if knob is Knob.MEMORY_MB:
            step = self.memory_step_mb
            value = math.ceil(round(value / step, 6)) * step  # 190 x 1.1 is 209, not 210
        bounds = self.range(knob)
        if bounds is not None:
            value = min(bounds[1], max(bounds[0], value))
        return int(value) if knob in INTEGER_KNOBS else float(value)

    def allows(self, knob: Knob, value: float) -> bool:
        """True when the value is within the knob's range (a knob without one allows anything)."""
        bounds = self.range(knob)
        return bounds is None or bounds[0] <= value <= bounds[1]


@dataclass(frozen=True, slots=True)
class Target:
    """A function that a provider manages, with its configuration and labels."""

    ref: FunctionRef
    config: FunctionConfig
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    limits: Limits = field(default_factory=Limits)
    owner: str = ""
    """Who to tell (a team or address label), when the provider knows it."""
    console_url: str = ""
    """Where a person can look at the function, when there is such a page."""


@dataclass(frozen=True, slots=True)
class DependencyFacts:
    """What one window says about calls from a function to one named dependency."""

    name: str
    calls: int
    errors: int
    latency_p95_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        """Errors per call, or None when there were no calls."""
        return self.errors / self.calls if self.calls else None


@dataclass(frozen=True, slots=True)
class WindowFacts:
    """Everything observed about one function over one time window.

    Counters are whole numbers; anything that was not measured is None, never 0,
    so that missing data can never look like a reason to act.
    """

    ref: FunctionRef
    start: float
    end: float
    invocations: int | None
    errors: int | None = None
    timeouts: int | None = None
    ooms: int | None = None
    throttles: int | None = None
    cold_starts: int | None = None
    init_errors: int | None = None
    """Init phases that failed (import error, crash or timeout before the handler ran)."""
    duration_p50_ms: float | None = None
    duration_p95_ms: float | None = None
    duration_p99_ms: float | None = None
    duration_max_ms: float | None = None
    peak_memory_mb: float | None = None
    dependencies: Mapping[str, DependencyFacts] = field(default_factory=dict)
    extra: Mapping[str, float] = field(default_factory=dict)
    """Provider-specific measurements, exposed to conditions under their own names."""
    evidence: Mapping[str, str] = field(default_factory=dict)
    """Text evidence from traces: ``hot_path``, ``allocation_site``, ``trace_ids``."""

    @property
    def empty(self) -> bool:
        """True when the window holds no invocations (or none were counted)."""
        return not self.invocations


@dataclass(frozen=True, slots=True)
class Lasting:
    """How long a temporary change lasts before the function goes back by itself."""

    invocations: int | None = None
    """The next N invocations."""
    seconds: float | None = None
    """This long after it went live."""

    def describe(self) -> str:
        """``for the next 3 invocations`` or ``for 10 min``."""
        if self.invocations is not None:
            return f"for the next {self.invocations} invocation{'s' * (self.invocations != 1)}"
        seconds = self.seconds or 0.0
        if seconds >= 60 and seconds % 60 == 0:
            return f"for {seconds / 60:g} min"
        return f"for {seconds:g} s"


@dataclass(frozen=True, slots=True)
class Change:
    """One knob of one function going from one value to another."""

    knob: Knob
    before: float | int | None
    after: float | int
    lasting: Lasting | None = None
    """For a temporary change (tracing): how long until the function goes back by itself."""

    @property
    def direction(self) -> int:
        """+1 when the knob goes up, -1 down, 0 unchanged or from an unknown value."""
        if self.before is None:
            return 0
        return (self.after > self.before) - (self.after < self.before)

    def describe(self) -> str:
        """A short human text, e.g. ``memory_mb 128 -> 384``."""
        lasting = f" {self.lasting.describe()}" if self.lasting is not None else ""
        return f"{self.knob.value} {_fmt(self.before)} -> {_fmt(self.after)}{lasting}"


def _fmt(value: float | int | None) -> str:
    if value is None:
        return "unset"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule whose condition held for a function: the input to planning."""

    ref: FunctionRef
    rule: str
    severity: Severity
    facts: Mapping[str, FactValue]
    window_end: float
