"""Actions that change no fix: switch the cache on, tell the owners, trace for a while."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from tuner.domain.durations import Duration
from tuner.domain.model import (
    Change,
    FunctionConfig,
    Knob,
    Lasting,
    Limits,
    extra_number,
    fact_number,
)
from tuner.engine.actions.base import BaseAction, Plan, not_applicable


class EnableCache(BaseAction):
    """Turn on the function's cache with a time-to-live.

    Example::

        - action: enable-cache
          ttl_s: 300
    """

    action: Literal["enable-cache"] = "enable-cache"
    ttl_s: int = Field(300, ge=1, le=86_400, description="Cache time-to-live in seconds.")
    knob: ClassVar[Knob | None] = Knob.CACHE_TTL_S
    symptom: ClassVar[str | None] = "duration_p95_ms"

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Switch the cache on unless it is on already."""
        current = config.cache_ttl_s
        if current is None:
            return not_applicable("the function has no cache setting")
        if current > 0:
            return not_applicable(f"the cache is already on (ttl {current} s)")
        return Plan(Change(Knob.CACHE_TTL_S, current, self.ttl_s), f"cache on (ttl {self.ttl_s} s)")


class Notify(BaseAction):
    """Change nothing; tell the owners (for what a machine must not fix).

    Example::

        - action: notify
    """

    action: Literal["notify"] = "notify"

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Never a change."""
        return Plan(change=None, summary="notify the owners")


class Trace(BaseAction):
    """Trace a misbehaving function for a while, so that the next decision has evidence.

    Tracing goes to ``sample_rate`` (1: every invocation) for the next ``invocations``
    invocations or ``for`` a time (exactly one of the two), then back to the function's
    own setting by itself; the host enforces the end even if tuner stops.  It is a change
    like any other (the guard's modes, cooldowns and caps apply), but not a fix: it is not
    judged on the symptom, it expires.  Providers that cannot trace say so.

    Example::

        - action: trace
          invocations: 20
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"oneOf": [{"required": ["invocations"]}, {"required": ["for"]}]},
    )

    action: Literal["trace"] = "trace"
    for_s: Duration | None = Field(
        None, alias="for", description="Trace for this long, e.g. 10m (or give `invocations`)."
    )
    invocations: int | None = Field(
        None,
        ge=1,
        le=100_000,
        validate_default=True,
        description="Trace the next N invocations (or give `for`).",
    )
    sample_rate: float = Field(
        1.0, gt=0.0, le=1.0, description="Share of invocations traced meanwhile (1: all)."
    )
    knob: ClassVar[Knob | None] = Knob.TRACING
    temporary: ClassVar[bool] = True

    @field_validator("for_s")
    @classmethod
    def _some_time(cls, value: float | None) -> float | None:
        """A time longer than 0."""
        if value is not None and value <= 0:
            raise ValueError("must be longer than 0 s")
        return value

    @field_validator("invocations")
    @classmethod
    def _one_limit(cls, value: int | None, info: ValidationInfo) -> int | None:
        """Exactly one of ``invocations`` and ``for``."""
        if "for_s" in info.data and (info.data["for_s"] is None) == (value is None):
            given = "neither was given" if value is None else "both were given"
            raise ValueError(f"give exactly one of 'invocations' or 'for' ({given})")
        return value

    @property
    def lasting(self) -> Lasting:
        """How long the tracing lasts."""
        return Lasting(invocations=self.invocations, seconds=self.for_s)

    def plan(self, config: FunctionConfig, limits: Limits, facts: Mapping[str, Any]) -> Plan:
        """Switch tracing on for a while, unless it cannot be or already traces this much."""
        current = config.tracing
        if current is None:
            return not_applicable("this provider cannot switch tracing on")
        if current >= self.sample_rate:
            return not_applicable(
                f"tracing is already on for a while ({current:.0%} of the invocations)"
            )
        traced = extra_number(facts, "traced_invocations")
        invocations = fact_number(facts, "invocations")
        if traced and invocations and traced >= invocations:
            return not_applicable("every invocation is traced already")
        lasting = self.lasting
        share = (
            "every invocation"
            if self.sample_rate >= 1
            else f"{self.sample_rate:.0%} of the invocations"
        )
        return Plan(
            Change(Knob.TRACING, current, self.sample_rate, lasting),
            f"trace {share} {lasting.describe()}, then back to its own setting",
        )
