"""Changes tried on a share of an alias's real traffic first, through the daemon, against moto.

A memory change of a function behind the alias ``live`` is published as a new version
that gets 10% of the alias's traffic.  The windows that judge it are that version's REPORT
lines alone; judged to stay, the alias moves wholly to it, judged worse, all traffic goes
back.  A person's change to the alias is left alone, and a crash between publishing and
routing is put right when tuner starts again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_world import AwsWorld, CallRecorder, ok_invocations, oom_invocations, report_line
from proxy import AwsProxy, lambda_error

from tuner.daemon.loop import Daemon, DaemonSettings
from tuner.decisions.verifying import VerifyPolicy
from tuner.domain.decisions import Decision, Intent
from tuner.domain.errors import ProviderError
from tuner.domain.lifecycle import JUDGED, State, Verdict
from tuner.domain.model import Change, FunctionRef, Knob, Mode, Severity
from tuner.engine import load_rules
from tuner.providers.aws import AwsProvider
from tuner.store.audit import SqliteStore

ALIAS = "live"
FAST = {"control_plane_rps": 15.0}
"""Lambda's quota: a trial makes more control-plane calls than a plain change."""
WINDOW = 60.0
RULES = """\
version: 1
rules:
  - name: oom
    description: The function ran out of memory
    when: ooms > 0.0
    actions:
      - action: more-memory
        margin: 0.1
        growth: 2.0
    severity: critical
    cooldown: 10m
"""


class StepClock:
    """A clock that moves only when told, started an hour ago so that moto keeps the data."""

    def __init__(self) -> None:
        self.t = time.time() - 3600

    def now(self) -> float:
        return self.t


def failed_invocations(count: int, memory_mb: int) -> list[str]:
    """REPORT lines of invocations that ended in an error (newer runtimes say so)."""
    return [
        report_line(str(uuid.uuid4()), 30.0, memory_mb, 90, status="error") for _ in range(count)
    ]


def alias(world: AwsWorld) -> dict[str, Any]:
    found: dict[str, Any] = world.client("lambda").get_alias(FunctionName="resize", Name=ALIAS)
    return found


def weights(world: AwsWorld) -> dict[str, float]:
    return dict((alias(world).get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def latest_memory(world: AwsWorld) -> int:
    config = world.client("lambda").get_function_configuration(FunctionName="resize")
    return int(config["MemorySize"])


class Harness:
    """A function behind an alias, an AWS provider with canaries on, and a daemon over both."""

    def __init__(self, world: AwsWorld, provider: AwsProvider, tmp_path: Path) -> None:
        self.world = world
        self.provider = provider
        self.clock = StepClock()
        rules = tmp_path / "rules.yaml"
        rules.write_text(RULES, encoding="utf-8")
        self.store = SqliteStore(tmp_path / "tuner.db")
        self.daemon = Daemon(
            providers=[provider],
            rules=load_rules([rules]),
            store=self.store,
            clock=self.clock,
            settings=DaemonSettings(
                mode=Mode.APPLY, window_s=WINDOW, verify_policy=VerifyPolicy(windows=1)
            ),
        )

    def cycle(self, lines: dict[str, list[str]], invocations: float, errors: float) -> None:
        """Run one cycle over a window with these log lines per version and these metrics."""
        self.clock.t += WINDOW
        when = self.clock.t - WINDOW / 2
        self.world.put_metrics("resize", when, Invocations=invocations, Errors=errors)
        for version, version_lines in lines.items():
            self.world.put_log_lines("resize", when, version_lines, version=version)
        report = self.daemon.run_cycle()
        assert report.errors == []

    def start_canary(self) -> Decision:
        """One window of out-of-memory kills at 128 MB: the OOM rule starts a canary."""
        lines = oom_invocations(4, 128, 200.0) + ok_invocations([50.0] * 6, 128, 100)
        self.cycle({"1": lines}, invocations=10, errors=4)
        [change] = self.changes()
        assert change.state is State.APPLIED and change.change is not None
        return change

    def begin(self, change: Change) -> Decision:
        """Write down a change as the applier does before it calls the provider."""
        ref = FunctionRef("aws", "resize", self.world.region)
        decision = (
            Decision(
                id=uuid.uuid4().hex,
                time=self.clock.now(),
                ref=ref,
                rule="oom",
                action="more-memory",
                severity=Severity.CRITICAL,
                mode=Mode.APPLY,
                change=change,
            )
            .with_verdict(Verdict.APPLY)
            .advance(State.APPLYING)
        )
        intent = Intent(uuid.uuid4().hex, decision.id, ref, (change,), self.clock.now())
        self.store.begin_intent(intent, decision)
        return decision

    def changes(self) -> list[Decision]:
        return [
            d for d in self.store.decisions() if d.change is not None and d.action != "rollback"
        ]

    def rollbacks(self) -> list[Decision]:
        return [d for d in self.store.decisions() if d.action == "rollback"]


@pytest.fixture
def harness(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], tmp_path: Path
) -> Iterator[Harness]:
    world.create_function("resize", memory_mb=128, timeout_s=3)
    assert world.publish_behind_alias("resize", ALIAS) == "1"
    made = Harness(world, make_provider(canary={"alias": ALIAS, "weight": 0.1}, **FAST), tmp_path)
    yield made
    made.store.close()


def test_a_memory_change_is_published_and_gets_a_share_of_the_alias(harness: Harness) -> None:
    change = harness.start_canary()

    assert change.change is not None and change.change.after > 128
    lambda_ = harness.world.client("lambda")
    version = lambda_.get_function_configuration(FunctionName="resize", Qualifier="2")
    assert version["MemorySize"] == change.change.after
    assert version["Description"].startswith("tuner canary: 0.1 of alias live beside version 1;")
    assert alias(harness.world)["FunctionVersion"] == "1"  # 90% stay on the old version
    assert weights(harness.world) == {"2": 0.1}
    [target] = harness.provider.targets()
    assert target.config.memory_mb == change.change.after  # what is judged is the canary


def test_the_canary_versions_reports_are_the_facts_and_improved_is_promoted(
    harness: Harness,
) -> None:
    change = harness.start_canary()
    assert change.change is not None
    size = int(change.change.after)

    # the old version still runs out of memory on 90% of the traffic; the canary does not
    harness.cycle(
        {"1": oom_invocations(9, 128, 200.0), "2": ok_invocations([40.0] * 6, size, 150)},
        invocations=15,
        errors=9,
    )

    [judged] = harness.changes()
    assert judged.state is State.IMPROVED, judged.why
    assert "promoted: alias live sends all traffic to version 2" in judged.why
    assert alias(harness.world)["FunctionVersion"] == "2"
    assert weights(harness.world) == {}
    assert latest_memory(harness.world) == size  # the next deployment keeps the new size
    [target] = harness.provider.targets()
    assert target.config.memory_mb == size


def test_facts_of_a_function_on_trial_are_its_canary_version_alone(harness: Harness) -> None:
    harness.start_canary()
    [target] = harness.provider.targets()
    now = harness.clock.t + WINDOW
    when = now - WINDOW / 2
    harness.world.put_metrics("resize", when, Invocations=100, Errors=50)
    harness.world.put_log_lines("resize", when, oom_invocations(5, 128, 200.0), version="1")
    harness.world.put_log_lines(
        "resize",
        when,
        ok_invocations([10.0, 20.0, 30.0], int(target.config.memory_mb or 0), 140),
        version="2",
    )

    facts = harness.provider.observe([target], now - WINDOW, now)[target.ref]

    assert (facts.invocations, facts.errors, facts.ooms) == (3, 0, 0)
    assert facts.duration_max_ms == 30.0
    assert facts.extra["canary_version"] == 2.0
    assert facts.extra["canary_weight"] == 0.1


def test_worse_routes_all_traffic_back_and_puts_latest_back(harness: Harness) -> None:
    change = harness.start_canary()
    assert change.change is not None
    size = int(change.change.after)

    harness.cycle(
        {"1": ok_invocations([40.0] * 9, 128, 100), "2": failed_invocations(6, size)},
        invocations=15,
        errors=6,
    )

    [original] = harness.changes()
    assert original.state is State.ROLLED_BACK
    [rollback] = harness.rollbacks()
    assert rollback.state is State.APPLIED and rollback.undoes == original.id
    assert alias(harness.world)["FunctionVersion"] == "1"
    assert weights(harness.world) == {}
    assert latest_memory(harness.world) == 128
    assert harness.provider.targets()[0].config.memory_mb == 128


def test_a_persons_change_to_the_alias_is_neither_promoted_nor_routed_back(
    harness: Harness,
) -> None:
    change = harness.start_canary()
    assert change.change is not None
    size = int(change.change.after)
    person = {"AdditionalVersionWeights": {"2": 0.5}}
    harness.world.client("lambda").update_alias(
        FunctionName="resize", Name=ALIAS, FunctionVersion="1", RoutingConfig=person
    )
    harness.clock.t += 10  # past invocations still in flight at the change: "unchanged" counts

    harness.cycle(
        {"1": ok_invocations([40.0] * 9, 128, 100), "2": ok_invocations([40.0] * 6, size, 150)},
        invocations=15,
        errors=0,
    )

    [judged] = harness.changes()
    assert judged.state in JUDGED, judged.why
    assert "alias live was changed outside tuner: not promoted, left as it is" in judged.why
    assert harness.rollbacks() == []
    assert alias(harness.world)["FunctionVersion"] == "1"
    assert weights(harness.world) == {"2": 0.5}


def test_a_promotion_refused_for_a_concurrent_alias_change_is_tried_again(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], proxy: AwsProxy, tmp_path: Path
) -> None:
    world.create_function("resize", memory_mb=128, timeout_s=3)
    world.publish_behind_alias("resize", ALIAS)
    provider = make_provider(endpoint_url=proxy.url, canary={"alias": ALIAS}, **FAST)
    harness = Harness(world, provider, tmp_path)
    change = harness.start_canary()
    assert change.change is not None
    size = int(change.change.after)
    refused = proxy.inject(
        lambda_error(
            "PUT",
            r"/2015-03-31/functions/resize/aliases/live",
            "PreconditionFailedException",
            412,
            "The Revision Id provided does not match the latest Revision Id.",
            times=5,
        )
    )
    good = {"2": ok_invocations([40.0] * 6, size, 150)}

    harness.cycle(good, invocations=6, errors=0)
    assert refused.hits >= 1
    [waiting] = harness.changes()
    assert waiting.state is State.APPLIED  # not judged while it is still on trial
    assert weights(world) == {"2": 0.1}

    refused.times = refused.hits  # the alias is quiet again
    harness.cycle(good, invocations=6, errors=0)
    [judged] = harness.changes()
    assert judged.state is State.IMPROVED
    assert alias(world)["FunctionVersion"] == "2" and weights(world) == {}
    harness.store.close()


def test_a_crash_between_publishing_and_routing_is_put_right_on_start(harness: Harness) -> None:
    change = Change(Knob.MEMORY_MB, 128, 256)
    decision = harness.begin(change)
    # what the crashed tuner had done: $LATEST updated and published, the alias not yet routed
    lambda_ = harness.world.client("lambda")
    lambda_.update_function_configuration(FunctionName="resize", MemorySize=256)
    lambda_.publish_version(
        FunctionName="resize", Description="tuner canary: 0.1 of alias live beside version 1; x"
    )

    [settled] = harness.daemon.reconcile()

    assert settled.id == decision.id and settled.state is State.FAILED
    assert "interrupted before the change went live" in settled.why
    assert "$LATEST put back to what alias live serves: memory_mb 256 -> 128" in settled.why
    assert latest_memory(harness.world) == 128
    assert alias(harness.world)["FunctionVersion"] == "1" and weights(harness.world) == {}
    assert harness.store.open_intents() == []


def test_a_crash_after_routing_completes_the_record_on_start(harness: Harness) -> None:
    target = harness.provider.targets()[0]
    change = Change(Knob.MEMORY_MB, 128, 256)
    harness.begin(change)
    harness.provider.apply(target, [change])  # live; the crash came before the record

    [settled] = harness.daemon.reconcile()

    assert settled.state is State.APPLIED
    assert weights(harness.world) == {"2": 0.1}


def test_unpublished_work_on_latest_is_never_published_as_a_canary(harness: Harness) -> None:
    lambda_ = harness.world.client("lambda")
    lambda_.update_function_configuration(
        FunctionName="resize", Environment={"Variables": {"FEATURE": "half-done"}}
    )
    [target] = harness.provider.targets()

    with pytest.raises(ProviderError, match=r"\$LATEST differs from version 1 .*Environment"):
        harness.provider.apply(target, [Change(Knob.MEMORY_MB, 128, 256)])

    assert latest_memory(harness.world) == 128
    assert weights(harness.world) == {}
    versions = lambda_.list_versions_by_function(FunctionName="resize")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1"]


def test_a_function_without_the_alias_is_changed_as_before(
    world: AwsWorld, make_provider: Callable[..., AwsProvider]
) -> None:
    world.create_function("plain", memory_mb=128)
    provider = make_provider(canary={"alias": ALIAS}, **FAST)
    [target] = provider.targets()

    config = provider.apply(target, [Change(Knob.MEMORY_MB, 128, 256)])

    assert config.memory_mb == 256
    live = world.client("lambda").get_function_configuration(FunctionName="plain")
    assert live["MemorySize"] == 256
    assert (
        world.client("lambda").list_versions_by_function(FunctionName="plain")["Versions"][-1][
            "Version"
        ]
        == "$LATEST"
    )


def test_a_refused_routing_puts_latest_back_at_once(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], proxy: AwsProxy
) -> None:
    world.create_function("resize", memory_mb=128, timeout_s=3)
    world.publish_behind_alias("resize", ALIAS)
    provider = make_provider(endpoint_url=proxy.url, canary={"alias": ALIAS}, **FAST)
    [target] = provider.targets()
    refused = proxy.inject(
        lambda_error(
            "PUT",
            r"/2015-03-31/functions/resize/aliases/live",
            "InvalidParameterValueException",
            400,
            "RoutingConfig is not valid.",
        )
    )

    with pytest.raises(ProviderError, match="RoutingConfig is not valid"):
        provider.apply(target, [Change(Knob.MEMORY_MB, 128, 256)])

    assert refused.hits == 1
    assert latest_memory(world) == 128
    assert alias(world)["FunctionVersion"] == "1" and weights(world) == {}
    assert provider.read(target.ref).memory_mb == 128


def test_a_rollback_after_a_promotion_routes_all_traffic_to_the_version_it_replaced(
    harness: Harness,
) -> None:
    [target] = harness.provider.targets()
    raise_memory = Change(Knob.MEMORY_MB, 128, 256)
    harness.provider.apply(target, [raise_memory])
    decision = harness.begin(raise_memory)
    assert harness.provider.promote(target.ref, decision).startswith("promoted")
    [promoted] = harness.provider.targets()
    assert alias(harness.world)["FunctionVersion"] == "2"

    config = harness.provider.apply(promoted, [Change(Knob.MEMORY_MB, 256, 128)])

    assert config.memory_mb == 128
    assert alias(harness.world)["FunctionVersion"] == "1" and weights(harness.world) == {}
    assert latest_memory(harness.world) == 128
    versions = harness.world.client("lambda").list_versions_by_function(FunctionName="resize")
    assert [v["Version"] for v in versions["Versions"]] == ["$LATEST", "1", "2"]  # no new trial


def test_listing_with_canaries_on_costs_one_to_three_lambda_reads_per_function(
    harness: Harness, recorder: CallRecorder
) -> None:
    harness.world.create_function("plain", memory_mb=128)  # without the alias
    recorder.watch(harness.provider)

    harness.provider.targets()
    assert (recorder.count("GetAlias"), recorder.count("GetFunctionConfiguration")) == (2, 1)

    resize = next(t for t in harness.provider.targets() if t.ref.name == "resize")
    harness.provider.apply(resize, [Change(Knob.MEMORY_MB, 128, 256)])  # now on trial
    recorder.calls.clear()
    harness.provider.targets()
    assert (recorder.count("GetAlias"), recorder.count("GetFunctionConfiguration")) == (2, 2)
