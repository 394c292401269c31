"""The providers tuner can run against, registered in one place.

Each provider is a package of the same shape: ``Settings`` (the model of its section in
``tuner.yaml``) and ``build(settings, *, clock)``.  The registry names each one, loads it
only when configured (so the local host never imports boto3 or the Kubernetes client) and
states what it must be granted: the IAM actions of ``docs/iam-policy.json`` and the RBAC
rules of the Helm chart are checked against these lists and against the calls the code makes.
"""

from __future__ import annotations

from functools import partial
from importlib import import_module
from types import ModuleType

from tuner.domain.registry import Entry, Registry

AWS_IAM_ACTIONS = (
    "lambda:ListFunctions",
    "lambda:GetFunctionConfiguration",
    "lambda:ListEventSourceMappings",
    "lambda:GetEventSourceMapping",
    "lambda:UpdateFunctionConfiguration",
    "lambda:UpdateEventSourceMapping",
    "lambda:GetAlias",
    "lambda:PublishVersion",
    "lambda:UpdateAlias",
    "tag:GetResources",
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
    "logs:FilterLogEvents",
    "dynamodb:DescribeTable",
    "rds:DescribeDBInstances",
    "s3:GetBucketLocation",
    "ec2:DescribeSubnets",
    "sts:AssumeRole",
)
"""Every AWS API action the provider calls (``sts:AssumeRole`` only with ``assume_role_arn``;
``GetAlias``, ``PublishVersion`` and ``UpdateAlias`` only with ``canary``; the DynamoDB, RDS,
S3 and EC2 ones only for the data stores a function names and its subnets)."""

PROVIDERS: Registry[ModuleType] = Registry(
    "provider type",
    [
        Entry(
            "local",
            partial(import_module, "tuner.providers.local"),
            summary="the embedded function host: Python handlers in worker processes",
        ),
        Entry(
            "aws",
            partial(import_module, "tuner.providers.aws"),
            permissions=AWS_IAM_ACTIONS,
            summary="AWS Lambda: Lambda, CloudWatch metrics and logs",
            needs=("boto3", "botocore"),
            extra="aws",
        ),
        Entry(
            "kubernetes",
            partial(import_module, "tuner.providers.kubernetes"),
            summary="Deployments and Knative Services, through the Kubernetes API",
            needs=("kubernetes",),
            extra="kubernetes",
        ),
        Entry(
            "sim",
            partial(import_module, "tuner.providers.sim"),
            summary="a simulated fleet on a virtual clock, for benchmarks and tuner simulate",
        ),
    ],
)
"""Provider type -> its package (``Settings``, ``build``), loaded on first use."""
