"""Changing Lambda functions through the provider, against moto (and AWS answers moto lacks)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from aws_world import AwsWorld, CallRecorder
from proxy import AwsProxy, Injection, lambda_error

from tuner.domain.errors import ApplyFailedError, ConflictError, ProviderError
from tuner.domain.model import Change, Knob, Target
from tuner.providers.aws import AwsProvider

CONFIGURATION = r"/2015-03-31/functions/[^/]+/configuration"


def target_named(provider: AwsProvider, name: str) -> Target:
    return next(t for t in provider.targets() if t.ref.name == name)


def test_memory_timeout_and_cache_are_applied_and_the_environment_merged(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], recorder: CallRecorder
) -> None:
    world.create_function(
        "resize", memory_mb=128, timeout_s=3, environment={"DB_PASSWORD": "s3cret"}
    )
    provider = make_provider()
    recorder.watch(provider)
    target = target_named(provider, "resize")

    config = provider.apply(
        target,
        [
            Change(Knob.MEMORY_MB, 128, 384),
            Change(Knob.TIMEOUT_S, 3.0, 9.2),
            Change(Knob.CACHE_TTL_S, None, 300),
        ],
    )

    assert (config.memory_mb, config.timeout_s, config.cache_ttl_s) == (384, 10.0, 300)
    live = world.client("lambda").get_function_configuration(FunctionName="resize")
    assert (live["MemorySize"], live["Timeout"]) == (384, 10)
    assert live["Environment"]["Variables"] == {
        "DB_PASSWORD": "s3cret",
        "TUNER_CACHE_TTL_S": "300",
    }
    assert recorder.count("UpdateFunctionConfiguration") == 1


def test_applying_values_that_are_already_live_makes_no_update(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], recorder: CallRecorder
) -> None:
    world.create_function("resize", memory_mb=384, timeout_s=10)
    world.attach_queue("resize", batch_size=5)
    provider = make_provider()
    recorder.watch(provider)
    target = target_named(provider, "resize")

    config = provider.apply(
        target, [Change(Knob.MEMORY_MB, 128, 384), Change(Knob.BATCH_SIZE, 10, 5)]
    )

    assert (config.memory_mb, config.batch_size) == (384, 5)
    assert recorder.count("UpdateFunctionConfiguration") == 0
    assert recorder.count("UpdateEventSourceMapping") == 0


def test_batch_size_is_applied_to_the_event_source_mapping(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], recorder: CallRecorder
) -> None:
    world.create_function("ingest")
    uuid = world.attach_queue("ingest", batch_size=10)
    provider = make_provider()
    recorder.watch(provider)

    config = provider.apply(target_named(provider, "ingest"), [Change(Knob.BATCH_SIZE, 10, 4)])

    assert config.batch_size == 4
    assert world.client("lambda").get_event_source_mapping(UUID=uuid)["BatchSize"] == 4
    assert recorder.count("UpdateFunctionConfiguration") == 0


def test_a_batch_size_change_without_an_event_source_is_refused(
    world: AwsWorld, make_provider: Callable[..., AwsProvider]
) -> None:
    world.create_function("plain")
    provider = make_provider()
    with pytest.raises(ProviderError, match="no event source mapping"):
        provider.apply(target_named(provider, "plain"), [Change(Knob.BATCH_SIZE, None, 4)])


def test_knobs_lambda_does_not_have_are_refused(
    world: AwsWorld, make_provider: Callable[..., AwsProvider]
) -> None:
    world.create_function("plain")
    provider = make_provider()
    with pytest.raises(ProviderError, match="cannot change concurrency"):
        provider.apply(target_named(provider, "plain"), [Change(Knob.CONCURRENCY, None, 4)])


def test_a_target_read_before_another_change_conflicts_without_calling_update(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], recorder: CallRecorder
) -> None:
    world.create_function("resize")
    provider = make_provider()
    recorder.watch(provider)
    target = target_named(provider, "resize")
    stale = replace(target, config=replace(target.config, revision="rev-before"))

    with pytest.raises(ConflictError):
        provider.apply(stale, [Change(Knob.MEMORY_MB, 128, 256)])
    assert recorder.count("UpdateFunctionConfiguration") == 0


def test_a_stale_revision_rejected_by_lambda_is_a_conflict(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], proxy: AwsProxy
) -> None:
    world.create_function("resize")
    proxy.inject(
        lambda_error(
            "PUT",
            CONFIGURATION,
            "PreconditionFailedException",
            412,
            "The Revision Id provided does not match the latest Revision Id. "
            "Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
        )
    )
    provider = make_provider(endpoint_url=proxy.url)

    with pytest.raises(ConflictError):
        provider.apply(target_named(provider, "resize"), [Change(Knob.MEMORY_MB, 128, 256)])
    live = world.client("lambda").get_function_configuration(FunctionName="resize")
    assert live["MemorySize"] == 128


def test_an_update_in_progress_is_waited_out_and_retried(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], proxy: AwsProxy
) -> None:
    world.create_function("resize")
    in_progress = proxy.inject(
        lambda_error(
            "PUT",
            CONFIGURATION,
            "ResourceConflictException",
            409,
            "The operation cannot be performed at this time. An update is in progress for "
            "resource: arn:aws:lambda:eu-west-1:123456789012:function:resize",
            times=2,
        )
    )
    provider = make_provider(endpoint_url=proxy.url)

    config = provider.apply(target_named(provider, "resize"), [Change(Knob.MEMORY_MB, 128, 256)])

    assert in_progress.hits == 2
    assert config.memory_mb == 256


def test_a_conflict_that_outlasts_the_retries_is_a_retryable_error(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], proxy: AwsProxy
) -> None:
    world.create_function("resize")
    proxy.inject(
        lambda_error(
            "PUT", CONFIGURATION, "ResourceConflictException", 409, "update in progress", times=9
        )
    )
    provider = make_provider(endpoint_url=proxy.url, conflict_retries=3)

    with pytest.raises(ProviderError) as raised:
        provider.apply(target_named(provider, "resize"), [Change(Knob.MEMORY_MB, 128, 256)])
    assert raised.value.retryable
    assert not isinstance(raised.value, ConflictError)


def test_a_failed_update_raises_apply_failed_with_lambdas_reason(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], proxy: AwsProxy
) -> None:
    world.create_function("resize")
    provider = make_provider(endpoint_url=proxy.url)
    target = target_named(provider, "resize")

    def failed(configuration: dict[str, object]) -> dict[str, object]:
        return {
            **configuration,
            "LastUpdateStatus": "Failed",
            "LastUpdateStatusReason": "The function could not be updated: ENI limit reached",
            "LastUpdateStatusReasonCode": "EniLimitExceeded",
        }

    proxy.inject(Injection("GET", CONFIGURATION, times=99, amend=failed))

    with pytest.raises(ApplyFailedError, match="ENI limit reached"):
        provider.apply(target, [Change(Knob.MEMORY_MB, 128, 256)])


def test_control_plane_calls_are_held_to_the_configured_rate(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], recorder: CallRecorder
) -> None:
    world.create_function("resize")
    provider = make_provider(control_plane_rps=15)
    recorder.watch(provider)
    ref = target_named(provider, "resize").ref
    calls_before = len(recorder.calls)

    started = time.perf_counter()
    for _ in range(12):
        provider.read(ref)
    elapsed = time.perf_counter() - started

    lambda_calls = len(recorder.calls) - calls_before
    assert lambda_calls == 24  # configuration + event source mappings per read
    # The burst of 15 was partly spent by targets(); the rest wait at 15/s.
    assert elapsed >= (lambda_calls - 15) / 15 * 0.9
