"""The AWS Lambda provider: Lambda for targets and changes, CloudWatch for facts.

boto3 is imported only when the provider connects, so tuner runs without it when no
AWS provider is configured.
"""

from __future__ import annotations

from tuner.domain.ports import Clock, Provider
from tuner.providers.aws.provider import AwsProvider
from tuner.providers.aws.settings import Settings

__all__ = ["AwsProvider", "Settings", "build"]


def build(settings: Settings, *, clock: Clock) -> Provider:
    """An AWS provider for the settings; call ``start()`` before use and ``close()`` after."""
    return AwsProvider(settings, clock=clock)
