"""Discovery of the Lambda functions tuner manages in one region."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import structlog

from tuner.domain.model import FunctionRef, Target
from tuner.providers.aws.clients import RegionClients
from tuner.providers.aws.configs import (
    LAMBDA_LIMITS,
    config_from,
    environment_of,
    unqualified_arn,
)
from tuner.providers.aws.data_stores import DataStore, named_stores
from tuner.providers.aws.settings import Settings

log = structlog.get_logger(__name__)

ANY_VALUE = "*"


@dataclass(frozen=True, slots=True)
class Reach:
    """What a function's configuration says of its data: the stores it names, its subnets."""

    stores: tuple[DataStore, ...]
    subnets: tuple[str, ...]


def list_targets(
    clients: RegionClients, settings: Settings, reach: dict[FunctionRef, Reach] | None = None
) -> list[Target]:
    """The functions of one region that match the name patterns and the tags.

    Three paginated passes cover the whole region: ListFunctions, the tagging API's
    GetResources (tags of every function at once) and ListEventSourceMappings.  ``reach``
    gets what each function's configuration says of its data.
    """
    functions = [
        fn
        for page in clients.lambda_.get_paginator("list_functions").paginate()
        for fn in page.get("Functions", [])
        if any(fnmatchcase(fn["FunctionName"], p) for p in settings.name_patterns)
    ]
    tags = tags_by_arn(clients.tagging, settings.tags)
    selected = [fn for fn in functions if matches_tags(tags.get(fn["FunctionArn"], {}), settings)]
    batch_sizes = batch_sizes_by_arn(clients.lambda_)
    targets = [
        Target(
            ref=FunctionRef(settings.name, fn["FunctionName"], clients.region),
            config=config_from(fn, batch_sizes.get(fn["FunctionArn"], []), settings.cache_env_var),
            labels=tags.get(fn["FunctionArn"], {}),
            limits=LAMBDA_LIMITS,
            owner=tags.get(fn["FunctionArn"], {}).get(settings.owner_tag, ""),
            console_url=console_url(clients.region, fn["FunctionName"]),
        )
        for fn in selected
    ]
    if reach is not None:
        for fn, target in zip(selected, targets, strict=True):
            stores = tuple(named_stores(environment_of(fn)))
            subnets = tuple((fn.get("VpcConfig") or {}).get("SubnetIds") or ())
            reach[target.ref] = Reach(stores, subnets)
    log.info(
        "targets listed", region=clients.region, functions=len(functions), targets=len(targets)
    )
    return targets


def matches_tags(tags: Mapping[str, str], settings: Settings) -> bool:
    """True when the function carries every configured tag ('*' accepts any value)."""
    return all(
        key in tags and (wanted == ANY_VALUE or tags[key] == wanted)
        for key, wanted in settings.tags.items()
    )


def tags_by_arn(tagging: Any, wanted: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Tags of the region's Lambda functions by function ARN, narrowed server-side."""
    filters = [
        {"Key": key, "Values": [] if value == ANY_VALUE else [value]}
        for key, value in wanted.items()
    ]
    tags: dict[str, dict[str, str]] = {}
    pages = tagging.get_paginator("get_resources").paginate(
        ResourceTypeFilters=["lambda:function"], TagFilters=filters
    )
    for page in pages:
        for resource in page.get("ResourceTagMappingList", []):
            tags[unqualified_arn(resource["ResourceARN"])] = {
                t["Key"]: t["Value"] for t in resource.get("Tags", [])
            }
    return tags


def batch_sizes_by_arn(lambda_: Any) -> dict[str, list[int]]:
    """Batch sizes of the region's event source mappings by function ARN."""
    sizes: dict[str, list[int]] = {}
    for page in lambda_.get_paginator("list_event_source_mappings").paginate():
        for mapping in page.get("EventSourceMappings", []):
            if "BatchSize" in mapping:
                arn = unqualified_arn(mapping["FunctionArn"])
                sizes.setdefault(arn, []).append(int(mapping["BatchSize"]))
    return sizes


def console_url(region: str, name: str) -> str:
    """The AWS console page of a function."""
    return f"https://{region}.console.aws.amazon.com/lambda/home?region={region}#/functions/{name}"
