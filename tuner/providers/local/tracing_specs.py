"""How a function's invocations are traced: ``tracing:`` in its ``function.yaml`` or in ``tuner.yaml``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TracingSpec(BaseModel):
    """How a function's invocations are traced (``tracing:`` in function.yaml or tuner.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["off", "sample", "full"] = "sample"
    sample_rate: float = Field(default=0.1, ge=0.0, le=1.0)
    """Share of invocations traced in ``sample`` mode."""
    interval_ms: float = Field(default=1.0, ge=0.1, le=100.0)
    """How often the tracer samples the handler's stack."""
    memory: bool = True
    """Record the memory peak and, for a MemoryError, the allocation that failed."""
    allocations: float = Field(default=0.1, ge=0.0, le=1.0)
    """Share of traced invocations whose allocation sites are followed (tracemalloc), among
    those of a function under memory pressure (see :data:`MEMORY_PRESSURE`): it costs 2-9x
    on allocation-heavy code, so only some pay it, and only where the sites matter (never
    a cold worker's first, whose imports would cost seconds)."""
    keep: int = Field(default=50, ge=1, le=10_000)
    """Traces kept per function (the oldest are pruned)."""
    max_depth: int = Field(default=64, ge=4, le=512)
    """Frames kept per sampled stack."""
    max_nodes: int = Field(default=5000, ge=10, le=100_000)
    """Distinct frames kept per call tree."""
    max_spans: int = Field(default=200, ge=1, le=10_000)
    """Child spans kept per trace (dependency and nested calls)."""

    @field_validator("mode", mode="before")
    @classmethod
    def _unquoted_off(cls, value: Any) -> Any:
        """YAML reads an unquoted ``off`` as false: that means off."""
        return "off" if value is False else value
