"""The TuningPolicy custom resource's spec as a typed model, and the tuner.yaml it becomes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tuner.domain.durations import Duration
from tuner.domain.registry import UnknownNameError
from tuner.notify.channels import CHANNELS
from tuner.providers.kubernetes import LabelSelector


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class KeyRef(_Spec):
    """A key of a ConfigMap or Secret in the policy's namespace."""

    name: str
    key: str


class RulesSpec(_Spec):
    """Rules written inline (YAML text) or kept in a ConfigMap; neither means the defaults."""

    inline: str | None = None
    config_map_ref: KeyRef | None = Field(None, alias="configMapRef")


class LimitsSpec(_Spec):
    """Bounds for the changes tuner makes to the selected workloads.

    Unset bounds take the Kubernetes provider's defaults (its ``Settings``): one owner.
    """

    memory_min_mb: int | None = Field(None, alias="memoryMinMb", ge=4)
    memory_max_mb: int | None = Field(None, alias="memoryMaxMb", ge=4)
    concurrency_max: int | None = Field(None, alias="concurrencyMax", ge=1)
    allow_single_replica_restart: bool | None = Field(None, alias="allowSingleReplicaRestart")


class ChannelSpec(_Spec):
    """A notification channel whose secret (webhook URL, password) lives in a Secret."""

    name: str
    type: str = Field(
        description="A channel type of tuner's registry: slack, email, webhook, console."
    )
    secret_ref: KeyRef | None = Field(None, alias="secretRef")
    options: dict[str, Any] = Field(default_factory=dict)
    """Further channel options as in tuner.yaml (e.g. ``host``, ``to`` for email)."""

    @field_validator("type")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(str(UnknownNameError(CHANNELS.kind, value, list(CHANNELS))))
        return value


class PrometheusSpec(_Spec):
    """Where memory peaks and request latency come from."""

    url: str
    latency_metric: str | None = Field(None, alias="latencyMetric")


class ProbeSpec(_Spec):
    """Probes of OOM-killed Deployments (the Kubernetes provider's ``probe``); off by default."""

    enabled: bool = False
    factor: float | None = Field(None, gt=1.0, le=64.0)
    max_mb: int | None = Field(None, alias="maxMb", ge=64)
    for_s: Duration | None = Field(None, alias="for", ge=60.0, le=86_400.0)
    max_running: int | None = Field(None, alias="maxRunning", ge=1, le=50)

    def provider_options(self) -> dict[str, Any]:
        """The provider's ``probe`` section, with its defaults where the policy sets none."""
        options = {
            "enabled": self.enabled,
            "factor": self.factor,
            "max_mb": self.max_mb,
            "for": self.for_s,
            "max_running": self.max_running,
        }
        return {k: v for k, v in options.items() if v is not None}


class TuningPolicySpec(_Spec):
    """What a TuningPolicy asks for: which workloads, which rules, how far to go."""

    selector: LabelSelector = Field(default_factory=LabelSelector.opt_in)
    kinds: tuple[Literal["deployment", "ksvc"], ...] | None = Field(None, min_length=1)
    """The kinds tuned (``deployment``, ``ksvc``); the operator's default when unset."""
    mode: Literal["observe", "recommend", "apply"] = "recommend"
    interval: Duration | None = None
    rules: RulesSpec = Field(default_factory=lambda: RulesSpec.model_validate({}))
    limits: LimitsSpec = Field(default_factory=lambda: LimitsSpec.model_validate({}))
    channels: list[ChannelSpec] = Field(default_factory=list)
    prometheus: PrometheusSpec | None = None
    probe: ProbeSpec | None = None


SECRET_OPTION = {
    e.name: e.settings.secret_file
    for e in CHANNELS.entries()
    if e.settings is not None and e.settings.secret_file
}
"""The tuner.yaml channel option that names a file holding the channel's secret."""


def tuner_document(
    spec: TuningPolicySpec,
    *,
    namespace: str,
    name: str,
    api_url: str | None,
    rules_file: Path,
    store_file: Path,
    secret_files: dict[str, Path],
    default_interval_s: float,
    default_kinds: tuple[str, ...] = ("deployment", "ksvc"),
    shared_channels: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The tuner.yaml content that runs this policy (secrets only as file or variable names).

    ``shared_channels`` are the operator's channels (the chart's ``channels``), given to
    every policy; a policy's own channel of the same name replaces one.
    """
    provider: dict[str, Any] = {
        "type": "kubernetes",
        "name": "kubernetes",
        "namespace": namespace,
        "selector": spec.selector.model_dump(by_alias=True),
        "kinds": list(spec.kinds or default_kinds),
        "api_url": api_url,
        **spec.limits.model_dump(exclude_none=True),
    }
    if spec.prometheus is not None:
        provider["prometheus_url"] = spec.prometheus.url
        provider["latency_metric"] = spec.prometheus.latency_metric
    if spec.probe is not None:
        provider["probe"] = spec.probe.provider_options()
    channels: dict[str, dict[str, Any]] = {
        name: dict(options) for name, options in (shared_channels or {}).items()
    }
    for channel in spec.channels:
        options = dict(channel.options, type=channel.type)
        if channel.name in secret_files:
            options[SECRET_OPTION[channel.type]] = str(secret_files[channel.name])
        channels[channel.name] = options
    document: dict[str, Any] = {
        "mode": spec.mode,
        "interval": spec.interval if spec.interval is not None else default_interval_s,
        "rules": [str(rules_file)],
        "store": str(store_file),
        "providers": [provider],
        "channels": channels,
    }
    if channels:
        document["routing"] = {"default_channels": list(channels)}
    return document
