"""What a Lambda alias serves: its versions, its routing, and tuner's canary on it.

A version tuner publishes to try a change carries a description that marks it as tuner's
(``tuner canary: 0.1 of alias live beside version 7; memory_mb 128 -> 256``).  That mark is
the durable record of a canary: while the alias routes exactly the marked share to it,
beside the marked version, the canary is tuner's and in flight; a routing a person changed
is not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tuner.domain.model import FunctionConfig
from tuner.providers.aws.clients import RegionClients
from tuner.providers.aws.configs import config_from
from tuner.providers.aws.errors import error_code
from tuner.providers.aws.settings import Settings

LATEST = "$LATEST"
MARK = re.compile(
    r"^tuner canary: (?P<weight>[0-9.]+) of alias (?P<alias>\S+) beside version (?P<primary>\S+);"
)


@dataclass(frozen=True)
class Canary:
    """tuner's canary in flight: a version given a share of an alias's traffic."""

    version: str
    weight: float
    primary: str


@dataclass(frozen=True)
class AliasView:
    """What an alias serves: its versions, its routing, and the configuration that is judged.

    ``config`` is the canary version's while tuner's canary is in flight, else the primary
    version's; its revision joins the function's and the alias's, so that a person's change
    to either is a conflict.
    """

    alias: str
    alias_revision: str
    primary: str
    weights: Mapping[str, float]
    config: FunctionConfig
    canary: Canary | None
    primary_raw: Mapping[str, Any]


def alias_view(
    clients: RegionClients,
    name: str,
    latest_revision: str,
    batch_sizes: Sequence[int],
    settings: Settings,
) -> AliasView | None:
    """The alias's view of a function; None without the alias, or when it serves $LATEST."""
    assert settings.canary is not None
    alias_name = settings.canary.alias
    alias = get_alias(clients, name, alias_name)
    if alias is None or str(alias["FunctionVersion"]) == LATEST:
        return None
    primary = str(alias["FunctionVersion"])
    routing = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    weights = {str(version): float(weight) for version, weight in routing.items()}
    primary_raw = version_config(clients, name, primary)
    served, canary = primary_raw, None
    if len(weights) == 1:
        ((version, weight),) = weights.items()
        raw = version_config(clients, name, version)
        mark = MARK.match(str(raw.get("Description") or ""))
        if (
            mark is not None
            and mark["alias"] == alias_name
            and mark["primary"] == primary
            and math.isclose(float(mark["weight"]), weight)
        ):
            served, canary = raw, Canary(version, weight, primary)
    revision = f"{latest_revision}/{alias.get('RevisionId', '')}"
    config = config_from(served, batch_sizes, settings.cache_env_var)
    return AliasView(
        alias=alias_name,
        alias_revision=str(alias.get("RevisionId", "")),
        primary=primary,
        weights=weights,
        config=replace(config, revision=revision),
        canary=canary,
        primary_raw=primary_raw,
    )


def get_alias(clients: RegionClients, name: str, alias: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        found: dict[str, Any] = clients.lambda_.get_alias(FunctionName=name, Name=alias)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise
    return found


def version_config(clients: RegionClients, name: str, version: str) -> dict[str, Any]:
    raw: dict[str, Any] = clients.lambda_.get_function_configuration(
        FunctionName=name, Qualifier=version
    )
    return raw
