"""Data in another region or zone than the function, from what AWS says (moto's server).

A function in eu-west-1 (in a subnet of eu-west-1a) names, in its environment, a DynamoDB
table in us-east-1, a bucket in ap-southeast-2, a bucket of its own region and an RDS
instance of its region in eu-west-1b (by endpoint, in a connection string with a
password).  Three are far, and the proposal names each with its facts and the options.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import yaml
from aws_world import REGION, AwsWorld, CallRecorder

from tuner.daemon.config import parse_config
from tuner.daemon.wiring import build
from tuner.domain.lifecycle import State
from tuner.domain.model import FunctionRef
from tuner.providers.aws import AwsProvider
from tuner.providers.aws.data_stores import DataStore, named_stores

SECRET = "s3cr3t-pw"


def a_function_with_its_data_far(world: AwsWorld) -> None:
    table = world.table("orders", "us-east-1")
    world.bucket("photos-sydney", "ap-southeast-2")
    world.bucket("photos-dublin", REGION)
    database = world.database("ledger", f"{REGION}b")
    world.create_function(
        "checkout",
        tags={"tuner": "on"},
        environment={
            "ORDERS_TABLE": table,
            "PHOTOS": "s3://photos-sydney/incoming/",
            "THUMBS": "arn:aws:s3:::photos-dublin",
            "LEDGER_URL": f"postgres://ledger:{SECRET}@{database}:5432/ledger",
            "GREETING": "hello",
        },
        subnets=[world.subnet(f"{REGION}a")],
    )
    world.put_metrics("checkout", time.time() - 120, Invocations=40, Errors=0, Duration=80.0)


def test_a_functions_data_stores_are_named_from_its_environment_and_nothing_else() -> None:
    stores = named_stores(
        {
            "A": "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
            "B": f"postgres://ledger:{SECRET}@ledger.abc123.eu-west-1.rds.amazonaws.com:5432/x",
            "C": "s3://photos/key",
            "D": "arn:aws:rds:eu-west-1:123456789012:db:ledger",
            "E": "just text",
        }
    )
    assert stores == [
        DataStore("DynamoDB table", "orders", "us-east-1"),
        DataStore("RDS instance", "ledger", "eu-west-1"),
        DataStore("S3 bucket", "photos"),
    ]
    assert SECRET not in repr(stores)


def test_observe_names_the_far_stores_from_aws_facts(
    world: AwsWorld, make_provider: Callable[..., AwsProvider], recorder: CallRecorder
) -> None:
    a_function_with_its_data_far(world)
    provider = make_provider(tags={"tuner": "on"})
    recorder.watch(provider)
    now = time.time()
    window = provider.observe(provider.targets(), now - 600, now)[
        FunctionRef("aws", "checkout", REGION)
    ]
    assert window.extra["far_data_stores"] == 3.0
    text = window.evidence["far_data"]
    assert text.startswith(f"The function runs in {REGION}: ")
    assert "DynamoDB table orders is in us-east-1" in text
    assert "S3 bucket photos-sydney is in ap-southeast-2" in text
    assert f"RDS instance ledger is in zone {REGION}b, none of the function's subnets" in text
    assert "photos-dublin" not in text and SECRET not in text
    looked = {name for _, name in recorder.calls}
    assert {
        "DescribeTable",
        "GetBucketLocation",
        "DescribeDBInstances",
        "DescribeSubnets",
    } <= looked
    before = len(recorder.calls)
    provider.observe(provider.targets(), now - 600, now)  # kept: no lookups again
    again = {name for _, name in recorder.calls[before:]}
    assert again.isdisjoint({"DescribeTable", "GetBucketLocation", "DescribeDBInstances"})


def test_the_daemon_proposes_the_options_for_far_data(world: AwsWorld, tmp_path: Path) -> None:
    a_function_with_its_data_far(world)
    config = {
        "mode": "apply",
        "interval": "10m",
        "store": str(tmp_path / "tuner.db"),
        "providers": [{"type": "aws", "regions": [REGION], "endpoint_url": world.endpoint_url}],
    }
    tuner = build(parse_config(yaml.safe_dump(config), str(tmp_path / "tuner.yaml")))
    tuner.start()
    try:
        report = tuner.daemon.run_cycle()
        decisions = tuner.store.decisions(limit=100)
    finally:
        tuner.close()
    assert report.errors == []
    [told] = [d for d in decisions if d.rule == "data-elsewhere"]
    assert told.state is State.NOTIFIED and told.change is None
    assert "DynamoDB table orders is in us-east-1" in told.advice
    assert "Options: move the function (or the data) into one region" in told.advice
    assert "a DynamoDB global table replica, an RDS read replica" in told.advice
