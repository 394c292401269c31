"""The provider's registered IAM actions are exactly the calls it makes, and docs/iam-policy.json grants them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from aws_world import REGION, AwsWorld, CallRecorder, report_line

from tuner.domain.decisions import Decision
from tuner.domain.model import Change, Knob, Mode, Severity
from tuner.providers import PROVIDERS
from tuner.providers.aws import AwsProvider

POLICY = Path(__file__).parents[3] / "docs" / "iam-policy.json"
IAM_PREFIX = {
    "Lambda": "lambda",
    "CloudWatch": "cloudwatch",
    "CloudWatch Logs": "logs",
    "Resource Groups Tagging API": "tag",
    "STS": "sts",
    "DynamoDB": "dynamodb",
    "RDS": "rds",
    "S3": "s3",
    "EC2": "ec2",
}
ROLE_ONLY = {"sts:AssumeRole"}  # made only with assume_role_arn, by the session itself


def policy_actions() -> set[str]:
    statements = json.loads(POLICY.read_text())["Statement"]
    return {action for s in statements for action in s["Action"]}


def test_every_operation_of_a_full_cycle_is_in_the_policy_and_nothing_more(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], recorder: CallRecorder
) -> None:
    now = time.time()
    data = {  # the data stores it names are located too
        "KEEP": "1",
        "TABLE": world.table("orders", "us-east-1"),
        "DB": world.database("ledger", f"{REGION}b"),
        "BUCKET": "s3://photos",
    }
    world.bucket("photos", REGION)
    subnets = [world.subnet(f"{REGION}a")]
    world.create_function("resize", tags={"tuner": "on"}, environment=data, subnets=subnets)
    world.attach_queue("resize", batch_size=10)
    world.put_metrics("resize", now - 120, Invocations=10, Errors=1, Duration=2900.0)
    world.put_insights("resize", now - 120, used_memory_max=120.0)
    world.put_log_lines("resize", now - 120, [report_line("r1", 2900.0, 128, 128)])
    provider = make_provider(tags={"tuner": "on"})
    recorder.watch(provider)

    targets = provider.targets()
    provider.observe(targets, now - 600, now)
    provider.apply(
        targets[0],
        [
            Change(Knob.MEMORY_MB, 128, 256),
            Change(Knob.CACHE_TTL_S, None, 60),
            Change(Knob.BATCH_SIZE, 10, 5),
        ],
    )
    provider.read(targets[0].ref)

    # with canaries on: through an alias, promoted
    world.create_function("behind-alias", tags={"tuner": "on"})
    world.publish_behind_alias("behind-alias", "live")
    canaries = make_provider(tags={"tuner": "on"}, canary={"alias": "live"})
    recorder.watch(canaries)
    [target] = [t for t in canaries.targets() if t.ref.name == "behind-alias"]
    canaries.observe([target], now - 600, now)
    raise_memory = Change(Knob.MEMORY_MB, 128, 256)
    canaries.apply(target, [raise_memory])
    decision = Decision(
        id="d",
        time=now,
        ref=target.ref,
        rule="oom",
        action="more-memory",
        severity=Severity.CRITICAL,
        mode=Mode.APPLY,
        change=raise_memory,
    )
    assert canaries.promote(target.ref, decision).startswith("promoted")

    made = {f"{IAM_PREFIX[service]}:{operation}" for service, operation in recorder.calls}
    registered = set(PROVIDERS.entry("aws").permissions)
    assert made - registered == set(), "calls the registry does not name"
    assert registered - made - ROLE_ONLY == set(), "the registry names actions never called"
    assert policy_actions() == registered, "docs/iam-policy.json differs from the registry"


def test_an_assumed_role_supplies_the_credentials(
    world: AwsWorld, make_provider: Callable[..., AwsProvider]
) -> None:
    world.create_function("resize")
    provider = make_provider(assume_role_arn="arn:aws:iam::123456789012:role/tuner")

    assert [t.ref.name for t in provider.targets()] == ["resize"]
    credentials = provider.clients(REGION).session.get_credentials()
    assert credentials.method == "tuner-assume-role"
    assert credentials.get_frozen_credentials().access_key != "testing"
