"""Fixtures for the AWS provider tests: one moto server per session, reset for each test."""

from __future__ import annotations

import logging
import socket
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_world import REGION, AwsWorld, WallClock
from moto.server import ThreadedMotoServer

from tuner.providers.aws import AwsProvider, Settings, build


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """The URL of a moto server on 127.0.0.1, for the whole session."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and region in the environment, as boto3's chain reads them."""
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def world(moto_url: str) -> AwsWorld:
    """An empty AWS account on the moto server."""
    request = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
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


class CallRecorder:
    """Records every API operation a client makes, through botocore's ``before-call`` event."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def watch(self, provider: AwsProvider) -> CallRecorder:
        """Observe every client of the provider."""
        for region in provider.settings.regions:
            for client in provider.clients(region).all():
                client.meta.events.register("before-call", self._record)
        return self

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append((model.service_model.service_id, model.name))

    def count(self, operation: str) -> int:
        """How often an operation (e.g. ``GetMetricData``) was called."""
        return sum(1 for _, name in self.calls if name == operation)


@pytest.fixture
def recorder() -> CallRecorder:
    """A fresh call recorder."""
    return CallRecorder()
