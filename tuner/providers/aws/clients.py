"""boto3 clients for one region: adaptive retries, the control-plane token bucket, a role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from tuner.providers.aws.quotas import TokenBucket
from tuner.providers.aws.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RegionClients:
    """The clients tuner uses in one region (boto3 clients are thread-safe)."""

    region: str
    session: Any
    """The boto3 session the clients share (its credentials come from the chain or a role)."""
    lambda_: Any
    cloudwatch: Any
    logs: Any
    tagging: Any
    logs_bucket: TokenBucket

    def all(self) -> list[Any]:
        """Every client, e.g. to register event hooks or to close them."""
        return [self.lambda_, self.cloudwatch, self.logs, self.tagging]

    def close(self) -> None:
        """Close the clients' connection pools."""
        for client in self.all():
            client.close()


def connect(settings: Settings, region: str) -> RegionClients:
    """Clients for ``region``, with credentials from boto3's chain or the configured role."""
    session = _session(settings, region)

    def client(service: str) -> Any:
        return client_in(session, settings, service, region)

    lambda_ = client("lambda")
    control_plane = TokenBucket(settings.control_plane_rps)
    lambda_.meta.events.register("before-send.lambda", _take_token(control_plane))
    return RegionClients(
        region=region,
        session=session,
        lambda_=lambda_,
        cloudwatch=client("cloudwatch"),
        logs=client("logs"),
        tagging=client("resourcegroupstaggingapi"),
        logs_bucket=TokenBucket(settings.logs_rps),
    )


def client_in(session: Any, settings: Settings, service: str, region: str) -> Any:
    """A client of ``session`` for ``service`` in ``region``, with tuner's retries and timeouts."""
    from botocore.config import Config

    config = Config(
        region_name=region,
        retries={"mode": "adaptive", "max_attempts": settings.max_attempts},
        connect_timeout=5,
        read_timeout=30,
        user_agent_extra="tuner",
    )
    return session.client(service, config=config, endpoint_url=settings.endpoint_url)


def _take_token(bucket: TokenBucket) -> Any:
    def before_send(**_: Any) -> None:
        bucket.acquire()

    return before_send


def _session(settings: Settings, region: str) -> Any:
    import boto3

    if not settings.assume_role_arn:
        return boto3.Session(region_name=region)
    import botocore.session
    from botocore.credentials import CredentialProvider, RefreshableCredentials

    sts = boto3.Session(region_name=region).client("sts", endpoint_url=settings.endpoint_url)
    role_arn = settings.assume_role_arn

    def assume() -> dict[str, str]:
        extra = {"ExternalId": settings.external_id} if settings.external_id else {}
        credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="tuner", **extra)[
            "Credentials"
        ]
        expiration: datetime = credentials["Expiration"]
        log.info("assumed role", role_arn=role_arn, expires=expiration.isoformat())
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": expiration.isoformat(),
        }

    class AssumedRole(CredentialProvider):  # type: ignore[misc]
        METHOD = "tuner-assume-role"

        def load(self) -> RefreshableCredentials:
            return RefreshableCredentials.create_from_metadata(
                metadata=assume(), refresh_using=assume, method=self.METHOD
            )

    core = botocore.session.get_session()
    core.get_component("credential_provider").insert_before("env", AssumedRole())
    return boto3.Session(botocore_session=core, region_name=region)
