"""Where a Lambda function's data is: the data stores it names, looked up where they live.

A function names its data in its environment: a DynamoDB table's ARN, an RDS instance's
ARN or endpoint (``<id>.<hash>.<region>.rds.amazonaws.com``), an S3 bucket's ARN or an
``s3://`` URI.  Only those names are read out of the environment (never a value around
them: a password in a connection string stays where it is).  Each store is then looked
up in its own region, which tuner reads from AWS rather than assumes: ``DescribeTable``
(and its replicas), ``GetBucketLocation``, ``DescribeDBInstances`` (its zone and read
replicas); and the function's subnets' zones with ``DescribeSubnets``.  Answers are kept
for an hour (a store rarely moves).

A store in another region than the function's is far; so is an RDS instance in the
function's region but in a zone none of the function's subnets is in.  Each is one
``extra.far_data_stores``, named with its facts in ``evidence.far_data``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from tuner.domain.ports import Clock

log = structlog.get_logger(__name__)

KEEP_S = 3600.0
"""How long a store's location is kept before it is looked up again."""
_TABLE = re.compile(r"arn:aws[\w-]*:dynamodb:([a-z0-9-]+):\d{12}:table/([A-Za-z0-9_.-]{3,255})")
_DB = re.compile(r"arn:aws[\w-]*:rds:([a-z0-9-]+):\d{12}:db:([A-Za-z][A-Za-z0-9-]{0,62})")
_DB_HOST = re.compile(
    r"\b([A-Za-z][A-Za-z0-9-]{0,62})\.[a-z0-9]+\.([a-z]{2}-[a-z]+-\d)\.rds\.amazonaws\.com\b"
)
_BUCKET = re.compile(r"(?:arn:aws[\w-]*:s3:::|s3://)([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])")


@dataclass(frozen=True, slots=True)
class DataStore:
    """A data store a function names: its kind, name and (for all but a bucket) region."""

    kind: str
    """``DynamoDB table``, ``RDS instance`` or ``S3 bucket``."""
    name: str
    region: str = ""


@dataclass(frozen=True, slots=True)
class Located:
    """Where AWS says a data store is."""

    store: DataStore
    region: str
    zone: str = ""
    """An RDS instance's availability zone."""
    replicas: tuple[str, ...] = ()
    """A table's replica regions; an instance's read replicas."""


def named_stores(environment: Mapping[str, str]) -> list[DataStore]:
    """The data stores an environment names, each once, in the order first named."""
    found: dict[DataStore, None] = {}
    for value in environment.values():
        for region, name in _TABLE.findall(value):
            found[DataStore("DynamoDB table", name, region)] = None
        for region, name in _DB.findall(value):
            found[DataStore("RDS instance", name, region)] = None
        for name, region in _DB_HOST.findall(value):
            found[DataStore("RDS instance", name, region)] = None
        for name in _BUCKET.findall(value):
            found[DataStore("S3 bucket", name)] = None
    return list(found)


class DataStores:
    """Looks data stores and subnets up in their regions, and keeps the answers for a while."""

    def __init__(self, client: Callable[[str, str], Any], clock: Clock, keep_s: float = KEEP_S):
        self._client = client
        """A boto3 client for (service, region)."""
        self._clock = clock
        self._keep_s = keep_s
        self._known: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _kept(self, key: Any, look: Callable[[], Any]) -> Any:
        now = self._clock.now()
        with self._lock:
            known = self._known.get(key)
        if known is not None and now - known[0] < self._keep_s:
            return known[1]
        value = look()
        with self._lock:
            self._known[key] = (now, value)
        return value

    def locate(self, store: DataStore, home: str) -> Located | None:
        """Where the store is; None when AWS does not know it (or tuner may not ask)."""
        try:
            located: Located | None = self._kept(store, lambda: self._look(store, home))
        except Exception as error:  # noqa: BLE001 - one store unknown never fails a cycle
            log.warning("data store not located", store=store.name, error=str(error))
            return None
        return located

    def _look(self, store: DataStore, home: str) -> Located:
        if store.kind == "DynamoDB table":
            table = self._client("dynamodb", store.region).describe_table(TableName=store.name)
            regions = tuple(r["RegionName"] for r in table["Table"].get("Replicas") or [])
            return Located(store, store.region, replicas=regions)
        if store.kind == "RDS instance":
            rds = self._client("rds", store.region)
            [db] = rds.describe_db_instances(DBInstanceIdentifier=store.name)["DBInstances"]
            copies = tuple(db.get("ReadReplicaDBInstanceIdentifiers") or ())
            return Located(store, store.region, db.get("AvailabilityZone", ""), copies)
        answer = self._client("s3", home).get_bucket_location(Bucket=store.name)
        return Located(store, answer.get("LocationConstraint") or "us-east-1")

    def subnet_zones(self, region: str, subnets: Sequence[str]) -> frozenset[str]:
        """The availability zones of a function's subnets (none outside a VPC)."""
        if not subnets:
            return frozenset()

        def look() -> frozenset[str]:
            ec2 = self._client("ec2", region)
            found = ec2.describe_subnets(SubnetIds=list(subnets))["Subnets"]
            return frozenset(s["AvailabilityZone"] for s in found)

        try:
            zones: frozenset[str] = self._kept((region, tuple(sorted(subnets))), look)
        except Exception as error:  # noqa: BLE001 - without zones, zones are not compared
            log.warning("subnets not read", region=region, error=str(error))
            return frozenset()
        return zones


def far_data(region: str, zones: frozenset[str], located: Iterable[Located]) -> tuple[int, str]:
    """How many stores are in another region or zone than the function, and what each is."""
    far: list[str] = []
    for place in located:
        store = place.store
        if place.region != region:
            near = (
                f"; it has a replica in {region}"
                if store.kind == "DynamoDB table" and region in place.replicas
                else ""
            )
            far.append(f"{store.kind} {store.name} is in {place.region}{near}")
        elif place.zone and zones and place.zone not in zones:
            replicas = f" (read replicas: {', '.join(place.replicas)})" if place.replicas else ""
            far.append(
                f"{store.kind} {store.name} is in zone {place.zone}, none of the function's "
                f"subnets is ({', '.join(sorted(zones))}){replicas}"
            )
    if not far:
        return 0, ""
    return len(far), f"The function runs in {region}: " + "; ".join(far)
