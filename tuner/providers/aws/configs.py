"""Translation of Lambda's FunctionConfiguration into tuner's FunctionConfig."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tuner.domain.model import FunctionConfig, Limits
from tuner_handler.settings import FAN_OUT_ENV, HANDOVER_ENV, SPLIT_ABOVE_ENV

LAMBDA_LIMITS = Limits(
    memory_min_mb=128,
    memory_max_mb=10_240,
    memory_step_mb=1,
    timeout_min_s=1.0,
    timeout_max_s=900.0,
    batch_min=1,
    batch_max=10_000,
    cpu_scales_with_memory=True,
)
"""What Lambda allows: 128-10,240 MB, 1-900 s, and CPU grows with memory."""

TUNER_ENV_PREFIX = "TUNER_"


def environment_of(function: Mapping[str, Any]) -> dict[str, str]:
    """The full environment variables of a FunctionConfiguration (may hold secrets)."""
    variables = function.get("Environment", {}).get("Variables", {}) or {}
    return {str(k): str(v) for k, v in variables.items()}


def config_from(
    function: Mapping[str, Any], batch_sizes: Sequence[int], cache_env_var: str
) -> FunctionConfig:
    """The tunable configuration of a Lambda function and its event source mappings.

    Only the ``TUNER_*`` environment variables are carried, so that secrets in a
    function's environment never reach rules, the store or notifications.  With several
    event source mappings the batch size is the smallest of them.  A function whose code
    uses tuner_handler declares it by carrying its settings (``TUNER_HANDOVER_S``,
    ``TUNER_FAN_OUT``): only then has it the ``handover_s`` and ``fan_out`` knobs, and
    with ``fan_out`` the ``split_above_kb`` one (``TUNER_SPLIT_ABOVE_KB``, 0 when absent).
    """
    environment = environment_of(function)
    handover = _float_or_none(environment.get(HANDOVER_ENV))
    fan_out = _int_or_none(environment.get(FAN_OUT_ENV))
    split_above = _int_or_none(environment.get(SPLIT_ABOVE_ENV))
    return FunctionConfig(
        memory_mb=int(function["MemorySize"]),
        timeout_s=float(function["Timeout"]),
        batch_size=min(batch_sizes) if batch_sizes else None,
        fan_out=fan_out,
        split_above_kb=None if fan_out is None else max(0, split_above or 0),
        handover_s=None if handover is None else max(0.0, handover),
        cache_ttl_s=_int_or_none(environment.get(cache_env_var)),
        environment={k: v for k, v in environment.items() if k.startswith(TUNER_ENV_PREFIX)},
        revision=str(function.get("RevisionId", "")),
    )


def unqualified_arn(arn: str) -> str:
    """A function ARN without a version or alias qualifier."""
    parts = arn.split(":")
    return ":".join(parts[:7])


def _float_or_none(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is None or value == value else None  # NaN: unreadable


def _int_or_none(raw: str | None) -> int | None:
    value = _float_or_none(raw)
    return None if value is None else int(value)
