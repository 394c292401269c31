"""Fixtures for the AWS provider tests: one moto server per session, reset for each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_world import (
    REGION,
    AwsWorld,
    CallRecorder,
    WallClock,
    moto_server,
    reset,
    use_dummy_credentials,
)
from proxy import AwsProxy, running_proxy

from tuner.providers.aws import AwsProvider, Settings, build


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """The URL of a moto server on 127.0.0.1, for the whole session."""
    with moto_server() as url:
        yield url


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and region in the environment, as boto3's chain reads them."""
    use_dummy_credentials(monkeypatch)


@pytest.fixture
def world(moto_url: str) -> AwsWorld:
    """An empty AWS account on the moto server."""
    reset(moto_url)
    return AwsWorld(endpoint_url=moto_url)


@pytest.fixture
def make_provider(moto_url: str) -> Iterator[Callable[..., AwsProvider]]:
    """Build started providers on the moto server; all are closed after the test."""
    made: list[AwsProvider] = []

    def make(endpoint_url: str = moto_url, **options: Any) -> AwsProvider:
        defaults: dict[str, Any] = {
            "regions": [REGION],
            "endpoint_url": endpoint_url,
            "update_poll_s": 0.05,
            "conflict_wait_s": 0.01,
        }
        provider = build(Settings(**{**defaults, **options}), clock=WallClock())
        assert isinstance(provider, AwsProvider)
        provider.start()
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def proxy(moto_url: str) -> Iterator[AwsProxy]:
    """A proxy in front of moto that can answer like AWS where moto cannot."""
    with running_proxy(moto_url) as running:
        yield running


@pytest.fixture
def recorder() -> CallRecorder:
    """A fresh call recorder."""
    return CallRecorder()
