"""Listing the Lambda functions tuner manages, against moto's server."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aws_world import REGION, AwsWorld, CallRecorder
from proxy import AwsProxy, lambda_error

from tuner.domain.errors import ThrottledError
from tuner.domain.model import FunctionRef
from tuner.providers.aws import AwsProvider

LIST_FUNCTIONS = r"/2015-03-31/functions/?"


def test_targets_are_selected_by_tags_and_name_patterns(
    world: AwsWorld, make_provider: Callable[..., AwsProvider]
) -> None:
    world.create_function("orders-resize", tags={"tuner": "on", "owner": "team-a"})
    world.create_function("orders-audit", tags={"tuner": "off"})
    world.create_function("billing-report", tags={"tuner": "on"})
    world.create_function("orders-untagged")
    provider = make_provider(tags={"tuner": "on"}, name_patterns=["orders-*"])

    targets = provider.targets()

    assert [t.ref for t in targets] == [FunctionRef("aws", "orders-resize", REGION)]
    assert targets[0].owner == "team-a"
    assert targets[0].labels == {"tuner": "on", "owner": "team-a"}


def test_a_star_tag_value_accepts_any_value(
    world: AwsWorld, make_provider: Callable[..., AwsProvider]
) -> None:
    world.create_function("a", tags={"team": "x"})
    world.create_function("b", tags={"team": "y"})
    world.create_function("c", tags={"other": "x"})
    provider = make_provider(tags={"team": "*"})
    assert sorted(t.ref.name for t in provider.targets()) == ["a", "b"]


def test_target_config_carries_memory_timeout_batch_size_and_cache(
    world: AwsWorld, make_provider: Callable[..., AwsProvider]
) -> None:
    world.create_function(
        "ingest",
        memory_mb=512,
        timeout_s=30,
        environment={"TUNER_CACHE_TTL_S": "300", "DB_PASSWORD": "secret"},
    )
    world.attach_queue("ingest", batch_size=10)
    world.create_function("plain")
    targets = {t.ref.name: t for t in make_provider().targets()}

    ingest = targets["ingest"].config
    assert (ingest.memory_mb, ingest.timeout_s, ingest.batch_size) == (512, 30.0, 10)
    assert ingest.cache_ttl_s == 300
    assert dict(ingest.environment) == {"TUNER_CACHE_TTL_S": "300"}  # no secrets carried
    plain = targets["plain"].config
    assert (plain.batch_size, plain.cache_ttl_s) == (None, None)
    limits = targets["ingest"].limits
    assert (limits.memory_min_mb, limits.memory_max_mb) == (128, 10_240)
    assert (limits.timeout_min_s, limits.timeout_max_s) == (1.0, 900.0)
    assert limits.cpu_scales_with_memory
    assert targets["ingest"].console_url == (
        f"https://{REGION}.console.aws.amazon.com/lambda/home?region={REGION}#/functions/ingest"
    )


def test_tag_pages_are_all_followed(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], recorder: CallRecorder
) -> None:
    for i in range(120):
        world.create_function(f"fn-{i:03d}", tags={"tuner": "on"})
    provider = make_provider(tags={"tuner": "on"})
    recorder.watch(provider)

    targets = provider.targets()

    assert len(targets) == 120
    assert recorder.count("GetResources") == 3  # moto pages tags by 50
    assert recorder.count("ListFunctions") >= 1
    assert recorder.count("ListEventSourceMappings") >= 1


def test_every_configured_region_is_listed_with_its_scope(
    world: AwsWorld, make_provider: Callable[..., AwsProvider]
) -> None:
    world.create_function("eu-fn")
    other = AwsWorld(endpoint_url=world.endpoint_url, region="us-east-1")
    other.create_function("us-fn")
    provider = make_provider(regions=[REGION, "us-east-1"])

    refs = sorted(t.ref for t in provider.targets())

    assert refs == [FunctionRef("aws", "eu-fn", REGION), FunctionRef("aws", "us-fn", "us-east-1")]


def test_throttling_is_retried_adaptively_then_reported_as_throttled(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], proxy: AwsProxy
) -> None:
    world.create_function("resize")
    throttled = proxy.inject(
        lambda_error("GET", LIST_FUNCTIONS, "TooManyRequestsException", 429, "Rate exceeded")
    )
    assert [t.ref.name for t in make_provider(endpoint_url=proxy.url).targets()] == ["resize"]
    assert throttled.hits == 1

    proxy.inject(
        lambda_error("GET", LIST_FUNCTIONS, "TooManyRequestsException", 429, "Rate exceeded", 9)
    )
    with pytest.raises(ThrottledError):
        make_provider(endpoint_url=proxy.url, max_attempts=1).targets()
