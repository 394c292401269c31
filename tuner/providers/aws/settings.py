"""The options of the AWS Lambda provider, as written in tuner.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CanarySettings(BaseModel):
    """Changes through weighted alias routing: a share of the alias's real traffic first.

    A memory, timeout or cache change of a function that has the alias is published as a
    new version and given ``weight`` of the alias's traffic; once later windows judge it,
    the alias moves wholly to the new version, or all traffic goes back to the old one.
    """

    model_config = ConfigDict(extra="forbid")

    alias: str = Field(
        min_length=1, max_length=128, description="The alias whose traffic is shared, e.g. live."
    )
    weight: float = Field(
        0.1, gt=0, lt=1, description="The share of the alias's traffic the new version gets."
    )


class Settings(BaseModel):
    """Which Lambda functions tuner manages, and how hard it may use the AWS APIs.

    Credentials never appear here: boto3 finds them in its standard chain (environment,
    instance or task role, SSO); ``assume_role_arn`` switches to another account.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["aws"] = "aws"
    name: str = Field("aws", min_length=1, description="Provider name in function keys.")
    regions: list[str] = Field(min_length=1, description="Regions to manage, e.g. eu-west-1.")
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="Only functions carrying all these tags; a value of '*' accepts any value.",
    )
    name_patterns: list[str] = Field(
        default_factory=lambda: ["*"], description="Shell-style globs over function names."
    )
    assume_role_arn: str | None = Field(None, description="A role to assume (another account).")
    external_id: str | None = Field(None, description="ExternalId for assuming the role.")
    endpoint_url: str | None = Field(None, description="One endpoint for every service (tests).")
    owner_tag: str = Field("owner", description="The tag naming who to tell about a function.")
    cache_env_var: str = Field(
        "TUNER_CACHE_TTL_S", description="Environment variable that holds the cache TTL."
    )
    control_plane_rps: float = Field(
        10.0, gt=0, le=15, description="Lambda control-plane requests per second (quota 15/s)."
    )
    logs_rps: float = Field(5.0, gt=0, description="FilterLogEvents requests per second.")
    max_attempts: int = Field(8, ge=1, description="botocore adaptive-retry attempts per call.")
    near_timeout_ratio: float = Field(
        0.8, gt=0, le=1, description="Maximum duration above this share of the timeout: read logs."
    )
    rightsizing_every_cycles: int = Field(
        12, ge=1, description="Read the logs of every active function once per this many cycles."
    )
    max_log_reads_per_cycle: int = Field(50, ge=0, description="Log groups read per cycle.")
    max_log_events: int = Field(10_000, ge=1, description="Log events read per function.")
    duration_percentiles: bool = Field(
        False, description="Also ask CloudWatch for Duration p50/p95/p99 (not served by moto)."
    )
    lambda_insights: bool = Field(True, description="Read Lambda Insights memory when present.")
    conflict_retries: int = Field(5, ge=1, description="Attempts on ResourceConflictException.")
    conflict_wait_s: float = Field(1.0, gt=0, description="Base of the jittered conflict backoff.")
    update_poll_s: float = Field(2.0, gt=0, description="Poll interval while an update settles.")
    update_timeout_s: float = Field(300.0, gt=0, description="How long an update may settle.")
    canary: CanarySettings | None = Field(
        None, description="Try changes on a share of an alias's traffic first (off by default)."
    )
