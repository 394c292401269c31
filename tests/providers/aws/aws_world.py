"""A small AWS world on moto's server for the provider tests: functions, metrics and logs."""

from __future__ import annotations

import io
import json
import logging
import socket
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tuner.providers.aws import AwsProvider

REGION = "eu-west-1"
QUIET_EVERY = 1000
"""Right-sizing log reads so rare that the test functions are not due on the first cycle."""
ACCOUNT = "123456789012"
ASSUME_ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@contextmanager
def moto_server() -> Iterator[str]:
    """Run moto's server on a free port of 127.0.0.1; yields its URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def reset(moto_url: str) -> None:
    """Forget every resource on the moto server (its documented reset endpoint)."""
    request = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


def handler_zip() -> bytes:
    """A deployment package with one trivial handler, built in memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return event\n")
    return buffer.getvalue()


class WallClock:
    """The real time, as tuner's Clock port wants it."""

    def now(self) -> float:
        return time.time()


@dataclass
class AwsWorld:
    """boto3 clients on the moto server, with helpers to build a fleet and its telemetry."""

    endpoint_url: str
    region: str = REGION
    clients: dict[str, Any] = field(default_factory=dict)
    _role_arn: str = ""
    _queues: int = 0

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on the moto server."""
        if service not in self.clients:
            self.clients[service] = boto3.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url
            )
        return self.clients[service]

    def role_arn(self) -> str:
        """The execution role every test function uses."""
        if not self._role_arn:
            iam = self.client("iam")
            try:
                role = iam.create_role(
                    RoleName="tuner-test-fn", AssumeRolePolicyDocument=ASSUME_ROLE_POLICY
                )
            except iam.exceptions.EntityAlreadyExistsException:  # IAM is global
                role = iam.get_role(RoleName="tuner-test-fn")
            self._role_arn = role["Role"]["Arn"]
        return self._role_arn

    def create_function(
        self,
        name: str,
        *,
        memory_mb: int = 128,
        timeout_s: int = 3,
        tags: dict[str, str] | None = None,
        environment: dict[str, str] | None = None,
        subnets: list[str] | None = None,
    ) -> dict[str, Any]:
        """Create a Lambda function from an in-memory zip (in a VPC's ``subnets`` when given)."""
        extra: dict[str, Any] = {}
        if tags:
            extra["Tags"] = tags
        if environment:
            extra["Environment"] = {"Variables": environment}
        if subnets:
            extra["VpcConfig"] = {"SubnetIds": subnets, "SecurityGroupIds": []}
        function: dict[str, Any] = self.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=self.role_arn(),
            Handler="handler.handle",
            Code={"ZipFile": handler_zip()},
            MemorySize=memory_mb,
            Timeout=timeout_s,
            **extra,
        )
        return function

    def subnet(self, zone: str) -> str:
        """A subnet in ``zone`` (of a VPC of its own) of the world's region."""
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet: str = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        return subnet

    def table(self, name: str, region: str) -> str:
        """A DynamoDB table in ``region``; returns its ARN."""
        dynamodb = boto3.client("dynamodb", region_name=region, endpoint_url=self.endpoint_url)
        table = dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        arn: str = table["TableDescription"]["TableArn"]
        return arn

    def bucket(self, name: str, region: str) -> None:
        """An S3 bucket in ``region``."""
        s3 = boto3.client("s3", region_name=region, endpoint_url=self.endpoint_url)
        where = (
            {}
            if region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        s3.create_bucket(Bucket=name, **where)

    def database(self, name: str, zone: str) -> str:
        """An RDS instance in ``zone`` of the world's region; returns its endpoint's address."""
        db = self.client("rds").create_db_instance(
            DBInstanceIdentifier=name,
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            AvailabilityZone=zone,
            MasterUsername="ledger",
            MasterUserPassword="not-a-real-password",
            AllocatedStorage=20,
        )
        address: str = db["DBInstance"]["Endpoint"]["Address"]
        return address

    def attach_queue(self, function: str, batch_size: int) -> str:
        """Give the function an SQS event source mapping; return the mapping's UUID."""
        self._queues += 1
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=f"{function}-queue-{self._queues}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        mapping = self.client("lambda").create_event_source_mapping(
            EventSourceArn=arn, FunctionName=function, BatchSize=batch_size
        )
        return str(mapping["UUID"])

    def put_metrics(self, function: str, when: float, **values: float) -> None:
        """Write AWS/Lambda datapoints, e.g. ``Invocations=100, Duration=2900.0``."""
        stamp = datetime.fromtimestamp(when, UTC)
        data = [
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "FunctionName", "Value": function}],
                "Timestamp": stamp,
                "Value": value,
                "Unit": "Milliseconds" if metric == "Duration" else "Count",
            }
            for metric, value in values.items()
        ]
        self.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=data)

    def put_insights(self, function: str, when: float, used_memory_max: float) -> None:
        """Write a Lambda Insights used_memory_max datapoint (MB)."""
        self.client("cloudwatch").put_metric_data(
            Namespace="LambdaInsights",
            MetricData=[
                {
                    "MetricName": "used_memory_max",
                    "Dimensions": [{"Name": "function_name", "Value": function}],
                    "Timestamp": datetime.fromtimestamp(when, UTC),
                    "Value": used_memory_max,
                    "Unit": "Megabytes",
                }
            ],
        )

    def publish_behind_alias(self, function: str, alias: str) -> str:
        """Publish the function's $LATEST and point a new alias wholly at it; the version."""
        lambda_ = self.client("lambda")
        version = str(lambda_.publish_version(FunctionName=function)["Version"])
        lambda_.create_alias(FunctionName=function, Name=alias, FunctionVersion=version)
        return version

    def put_log_lines(
        self, function: str, when: float, lines: list[str], version: str = "$LATEST"
    ) -> None:
        """Write lines into the function's log group, one event each, a millisecond apart.

        The stream is named as Lambda names it, after the version that ran them.
        """
        logs = self.client("logs")
        group = f"/aws/lambda/{function}"
        if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
            logs.create_log_group(logGroupName=group)
        stream = f"2026/11/27/[{version}]{len(lines)}{int(when)}{uuid.uuid4().hex[:8]}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        first = int(when * 1000)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": first + i, "message": line} for i, line in enumerate(lines)],
        )


def report_line(
    request_id: str,
    duration_ms: float,
    memory_mb: int,
    used_mb: int,
    init_ms: float | None = None,
    status: str = "",
) -> str:
    """A REPORT line as Lambda writes it."""
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {memory_mb} MB\t"
        f"Max Memory Used: {used_mb} MB\t"
    )
    if init_ms is not None:
        line += f"Init Duration: {init_ms:.2f} ms\t"
    if status:
        line += f"Status: {status}\t"
    return line


def oom_invocations(count: int, memory_mb: int, duration_ms: float) -> list[str]:
    """Log lines of invocations killed for want of memory: the runtime error and a full REPORT."""
    lines: list[str] = []
    for _ in range(count):
        rid = str(uuid.uuid4())
        lines.append(f"RequestId: {rid} Error: Runtime exited with error: signal: killed")
        lines.append(report_line(rid, duration_ms, memory_mb, memory_mb))
    return lines


def timed_out_invocations(count: int, timeout_s: int, memory_mb: int, used_mb: int) -> list[str]:
    """Log lines of invocations that hit the timeout: the timeout line and a REPORT."""
    lines: list[str] = []
    for _ in range(count):
        rid = str(uuid.uuid4())
        lines.append(f"2026-11-27T20:00:03.010Z {rid} Task timed out after {timeout_s}.00 seconds")
        lines.append(report_line(rid, timeout_s * 1000.0, memory_mb, used_mb, status="timeout"))
    return lines


def ok_invocations(durations_ms: list[float], memory_mb: int, used_mb: int) -> list[str]:
    """REPORT lines of invocations that went well."""
    return [report_line(str(uuid.uuid4()), d, memory_mb, used_mb) for d in durations_ms]


def use_dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and region in the environment, where boto3's chain reads them."""
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class CallRecorder:
    """Records every API operation a client makes, through botocore's ``before-call`` event."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def watch(self, provider: AwsProvider) -> CallRecorder:
        """Observe every client of the provider, and those its sessions make later."""
        for region in provider.settings.regions:
            clients = provider.clients(region)
            for client in clients.all():
                client.meta.events.register("before-call", self._record)
            clients.session.events.register("before-call", self._record)
        return self

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append((model.service_model.service_id, model.name))

    def count(self, operation: str) -> int:
        """How often an operation (e.g. ``GetMetricData``) was called."""
        return sum(1 for _, name in self.calls if name == operation)
