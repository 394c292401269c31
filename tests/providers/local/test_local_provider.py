"""LocalProvider through tuner's Provider port: targets, facts, apply, conflicts, persistence."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from local_world import WallClock

from tuner.domain.errors import ConflictError, ProviderError
from tuner.domain.model import Change, FunctionRef, Knob, Target
from tuner.domain.ports import Provider
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.provider import LOCAL_LIMITS, LocalProvider


def quiet_provider(functions_dir: Path, state_dir: Path) -> LocalProvider:
    """A provider without HTTP endpoint and traffic, not started yet."""
    host = FunctionHost(functions_dir, state_dir, WallClock())
    return LocalProvider(host, WallClock(), http_port=None, traffic=False)


def target(provider: LocalProvider, name: str) -> Target:
    return next(t for t in provider.targets() if t.ref.name == name)


def test_it_is_a_provider_listing_every_function(provider: LocalProvider) -> None:
    assert isinstance(provider, Provider)
    echo = target(provider, "echo")

    assert [t.ref.key for t in provider.targets()] == [
        "local:batcher",
        "local:crasher",
        "local:echo",
        "local:failing",
        "local:hog",
        "local:lookup",
        "local:sleeper",
    ]
    assert echo.config.memory_mb == 128 and echo.config.timeout_s == 5
    assert echo.config.revision == "1"
    assert (echo.labels, echo.owner, echo.limits) == ({"team": "test"}, "test-team", LOCAL_LIMITS)
    assert echo.console_url == ""  # the host has no console page: its endpoint needs a token
    assert target(provider, "batcher").config.batch_size == 5
    assert echo.config.batch_size is None


def test_apply_is_live_for_the_next_invocation(provider: LocalProvider) -> None:
    hog = target(provider, "hog")
    assert provider.host.invoke("hog", {"mb": 150}).outcome == "oom"

    config = provider.apply(hog, [Change(Knob.MEMORY_MB, 128, 256)])

    assert (config.memory_mb, config.revision) == (256, "2")
    assert provider.read(hog.ref) == config
    assert provider.host.invoke("hog", {"mb": 150}).outcome == "ok"
    recorded = provider.host.records.invocations(["hog"], 0, time.time() + 1)
    assert [r.revision for r in recorded] == [1, 2]


def test_apply_drains_the_workers_of_the_old_configuration(provider: LocalProvider) -> None:
    provider.host.invoke("echo", {})
    [old_worker] = provider.host.warm_workers("echo")

    provider.apply(target(provider, "echo"), [Change(Knob.TIMEOUT_S, 5, 10)])
    result = provider.host.invoke("echo", {})

    with pytest.raises(ProcessLookupError):
        os.kill(old_worker, 0)
    assert provider.host.warm_workers("echo") != [old_worker]
    assert result.result["remaining"] > 9000
    assert provider.host.records.invocations(["echo"], 0, time.time() + 1)[-1].cold_start


def test_a_stale_revision_conflicts(provider: LocalProvider) -> None:
    stale = target(provider, "echo")
    provider.apply(stale, [Change(Knob.MEMORY_MB, 128, 256)])

    with pytest.raises(ConflictError):
        provider.apply(stale, [Change(Knob.MEMORY_MB, 128, 512)])
    assert provider.read(stale.ref).memory_mb == 256


def test_applying_what_is_live_is_a_no_op(provider: LocalProvider) -> None:
    echo = target(provider, "echo")
    first = provider.apply(echo, [Change(Knob.MEMORY_MB, 128, 256)])

    again = provider.apply(echo, [Change(Knob.MEMORY_MB, 128, 256)])  # a retry, stale revision

    assert again == first and again.revision == first.revision == "2"
    assert len(provider.host.records.deployments("echo")) == 2  # the first deploy and one change


@pytest.mark.parametrize(
    ("knob", "value"),
    [
        (Knob.MEMORY_MB, 8192),
        (Knob.MEMORY_MB, 32),
        (Knob.TIMEOUT_S, 600),
        (Knob.FAN_OUT, 17),
        (Knob.CONCURRENCY, 4),
        (Knob.BATCH_SIZE, 10),
    ],
)
def test_values_outside_the_limits_or_unknown_knobs_are_refused(
    provider: LocalProvider, knob: Knob, value: int
) -> None:
    echo = target(provider, "echo")

    with pytest.raises(ProviderError):
        provider.apply(echo, [Change(knob, None, value)])
    assert provider.read(echo.ref).revision == "1"


def test_every_deployment_is_recorded_with_before_and_after(provider: LocalProvider) -> None:
    provider.apply(target(provider, "batcher"), [Change(Knob.BATCH_SIZE, 5, 2)])
    provider.apply(target(provider, "batcher"), [Change(Knob.CACHE_TTL_S, 0, 30)])

    deployments = provider.host.records.deployments("batcher")

    assert [d.revision for d in deployments] == [1, 2, 3]
    assert deployments[0].before is None
    assert (deployments[1].before.batch_size, deployments[1].after.batch_size) == (5, 2)
    assert (deployments[2].before.cache_ttl_s, deployments[2].after.cache_ttl_s) == (0, 30)


def test_the_configuration_persists_across_a_restart(functions_dir: Path, state_dir: Path) -> None:
    first = quiet_provider(functions_dir, state_dir)
    with first:
        first.apply(target(first, "hog"), [Change(Knob.MEMORY_MB, 128, 300)])

    second = quiet_provider(functions_dir, state_dir)
    with second:
        hog = target(second, "hog")
        assert (hog.config.memory_mb, hog.config.revision) == (300, "2")
        assert second.host.invoke("hog", {"mb": 200}).outcome == "ok"
        with pytest.raises(ConflictError):
            second.apply(replace_revision(hog, "1"), [Change(Knob.MEMORY_MB, 300, 400)])


def replace_revision(found: Target, revision: str) -> Target:
    from dataclasses import replace

    return replace(found, config=replace(found.config, revision=revision))


def test_facts_cover_the_invocations_that_ended_in_the_window(provider: LocalProvider) -> None:
    host = provider.host
    before = time.time()
    for _ in range(3):
        host.invoke("echo", {})
    host.invoke("lookup", {"key": "k", "dependency": "slow-db"})
    host.invoke("lookup", {"key": "k", "dependency": "dead-api"})
    host.invoke("hog", {"mb": 400})
    host.invoke("sleeper", {"seconds": 5})
    after = time.time()
    host.invoke("echo", {})

    facts = provider.observe(provider.targets(), before, after)

    echo = facts[provider.ref("echo")]
    assert (echo.invocations, echo.errors, echo.cold_starts) == (3, 0, 1)
    assert echo.duration_p50_ms is not None and echo.duration_p50_ms < 100
    assert echo.peak_memory_mb is not None and 5 < echo.peak_memory_mb < 128
    lookup = facts[provider.ref("lookup")]
    assert (lookup.invocations, lookup.errors) == (2, 1)
    slow, dead = lookup.dependencies["slow-db"], lookup.dependencies["dead-api"]
    assert (slow.calls, slow.errors, dead.calls, dead.errors) == (1, 0, 1, 1)
    assert slow.latency_p95_ms is not None and slow.latency_p95_ms >= 100
    hog = facts[provider.ref("hog")]
    assert (hog.ooms, hog.errors, hog.peak_memory_mb) == (1, 1, 128.0)
    sleeper = facts[provider.ref("sleeper")]
    assert (sleeper.timeouts, sleeper.duration_max_ms) == (1, 1000.0)
    failing = facts[provider.ref("failing")]
    assert failing.invocations == 0 and failing.empty
    assert failing.errors is None and failing.duration_p95_ms is None


def test_facts_count_only_invocations_at_the_configuration_in_force(
    provider: LocalProvider,
) -> None:
    """OOMs at 128 MB are the past once memory is 256 MB: they do not call for another raise."""
    before = time.time()
    for _ in range(2):
        assert provider.host.invoke("hog", {"mb": 150}).outcome == "oom"
    provider.apply(target(provider, "hog"), [Change(Knob.MEMORY_MB, 128, 256)])
    assert provider.host.invoke("hog", {"mb": 150}).outcome == "ok"

    hog = provider.observe(provider.targets(), before, time.time() + 1)[provider.ref("hog")]

    assert (hog.invocations, hog.ooms, hog.errors) == (1, 0, 0)


def test_an_oom_is_news_at_once_for_an_early_cycle(provider: LocalProvider) -> None:
    before = time.time()
    provider.host.invoke("echo", {})
    assert provider.urgent_since(before) == {}
    assert provider.host.invoke("hog", {"mb": 150}).outcome == "oom"
    ended = time.time()
    assert provider.host.invoke("hog", {"mb": 150}).outcome == "oom"

    news = provider.urgent_since(before)

    assert list(news) == [provider.ref("hog")] and before <= news[provider.ref("hog")] <= ended
    assert provider.urgent_since(time.time() + 1) == {}


def test_observe_ignores_targets_of_other_providers(provider: LocalProvider) -> None:
    foreign = Target(
        ref=FunctionRef("aws", "echo", "eu-west-1"), config=target(provider, "echo").config
    )

    assert provider.observe([foreign], 0, time.time()) == {}


def test_reset_redeploys_every_function_from_its_file(functions_dir: Path, state_dir: Path) -> None:
    first = quiet_provider(functions_dir, state_dir)
    with first:
        first.apply(target(first, "hog"), [Change(Knob.MEMORY_MB, 128, 300)])

    host = FunctionHost(functions_dir, state_dir, WallClock(), reset=True)
    try:
        assert (host.config("hog").memory_mb, host.config("hog").revision) == (128, "3")
        assert host.config("echo").revision == "1"  # unchanged functions are not redeployed
        assert [d.after.memory_mb for d in host.records.deployments("hog")] == [128, 300, 128]
    finally:
        host.close()
