"""Changing Lambda functions: memory, timeout and cache switch, and event-source batch size."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from tuner.domain.errors import ApplyFailedError, ConflictError, ProviderError
from tuner.domain.model import Change, FunctionConfig, Knob, Target
from tuner.providers.aws.clients import RegionClients
from tuner.providers.aws.configs import config_from, environment_of
from tuner.providers.aws.errors import error_code
from tuner.providers.aws.settings import Settings
from tuner_handler.settings import FAN_OUT_ENV, HANDOVER_ENV, SPLIT_ABOVE_ENV

log = structlog.get_logger(__name__)

SUPPORTED_KNOBS = (
    Knob.MEMORY_MB,
    Knob.TIMEOUT_S,
    Knob.CACHE_TTL_S,
    Knob.BATCH_SIZE,
    Knob.FAN_OUT,
    Knob.SPLIT_ABOVE_KB,
    Knob.HANDOVER_S,
)
ENVIRONMENT_KNOBS = {
    Knob.FAN_OUT: FAN_OUT_ENV,
    Knob.SPLIT_ABOVE_KB: SPLIT_ABOVE_ENV,
    Knob.HANDOVER_S: HANDOVER_ENV,
}
"""Knobs a function carries as environment variables for tuner_handler, by variable."""
_SETTLING_STATES = frozenset({"Creating", "Enabling", "Updating"})


def read_config(clients: RegionClients, name: str, settings: Settings) -> FunctionConfig:
    """The live configuration of one function."""
    return read_live(clients, name, settings)[2]


def read_live(
    clients: RegionClients, name: str, settings: Settings
) -> tuple[dict[str, Any], list[dict[str, Any]], FunctionConfig]:
    """The function's raw configuration, its event source mappings, and both as a config."""
    function = clients.lambda_.get_function_configuration(FunctionName=name)
    mappings = _mappings(clients, name)
    sizes = [int(m["BatchSize"]) for m in mappings]
    return function, mappings, config_from(function, sizes, settings.cache_env_var)


def apply_changes(
    clients: RegionClients, target: Target, changes: Sequence[Change], settings: Settings
) -> FunctionConfig:
    """Apply the changes to one function and wait until they are live.

    Reads the live configuration first: nothing is called when it already holds the
    wanted values, and a live RevisionId other than the target's raises ConflictError.
    The update itself carries the RevisionId, so a change in between is caught by
    Lambda (PreconditionFailedException -> ConflictError).
    """
    wanted = wanted_values(changes)
    name = target.ref.name
    function, mappings, live = read_live(clients, name, settings)
    pending = {knob: value for knob, value in wanted.items() if live.get(knob) != value}
    if not pending:
        log.info("already live", function=target.ref.key)
        return live
    if target.config.revision != live.revision:
        raise ConflictError(f"{target.ref.key} changed since it was read")
    undeclared = [k.value for k in pending if k in ENVIRONMENT_KNOBS and live.get(k) is None]
    if undeclared:
        raise ProviderError(
            f"{target.ref.key} does not carry {', '.join(undeclared)}: its code does not use"
            " tuner_handler"
        )
    update = function_update(pending, environment_of(function), settings.cache_env_var)
    if update:
        update_function(clients, name, live.revision, update, settings)
    if Knob.BATCH_SIZE in pending:
        if not mappings:
            raise ProviderError(f"{target.ref.key} has no event source mapping")
        for mapping in mappings:
            _update_batch_size(clients, mapping["UUID"], int(pending[Knob.BATCH_SIZE]), settings)
    log.info(
        "applied",
        function=target.ref.key,
        changes=[c.describe() for c in changes if c.knob in pending],
    )
    return read_config(clients, name, settings)


def wanted_values(changes: Sequence[Change]) -> dict[Knob, float | int]:
    """The value each change wants, as Lambda takes it (whole seconds, whole MB)."""
    unsupported = [c.knob.value for c in changes if c.knob not in SUPPORTED_KNOBS]
    if unsupported:
        raise ProviderError(f"aws cannot change {', '.join(unsupported)}")
    wanted: dict[Knob, float | int] = {}
    for change in changes:
        if change.knob is Knob.TIMEOUT_S:
            wanted[change.knob] = float(math.ceil(change.after))
        elif change.knob is Knob.HANDOVER_S:
            wanted[change.knob] = round(float(change.after), 3)
        else:
            wanted[change.knob] = int(change.after)
    return wanted


def function_update(
    pending: Mapping[Knob, float | int], environment: Mapping[str, str], cache_env_var: str
) -> dict[str, Any]:
    """The UpdateFunctionConfiguration fields that set the pending values (environment merged)."""
    update: dict[str, Any] = {}
    if Knob.MEMORY_MB in pending:
        update["MemorySize"] = int(pending[Knob.MEMORY_MB])
    if Knob.TIMEOUT_S in pending:
        update["Timeout"] = int(pending[Knob.TIMEOUT_S])
    variables = {
        name: f"{pending[knob]:g}" for knob, name in ENVIRONMENT_KNOBS.items() if knob in pending
    }
    if Knob.CACHE_TTL_S in pending:
        variables[cache_env_var] = str(int(pending[Knob.CACHE_TTL_S]))
    if variables:
        update["Environment"] = {"Variables": {**environment, **variables}}
    return update


def update_function(
    clients: RegionClients, name: str, revision: str, update: Mapping[str, Any], settings: Settings
) -> None:
    """Update the function's unpublished configuration ($LATEST) and wait until it settles."""
    from botocore.exceptions import WaiterError

    request = {"FunctionName": name, **update}
    if revision:
        request["RevisionId"] = revision
    _retrying_conflicts(settings)(lambda: _call_update(clients, request))
    waiter = clients.lambda_.get_waiter("function_updated")
    try:
        waiter.wait(
            FunctionName=name,
            WaiterConfig={"Delay": settings.update_poll_s, "MaxAttempts": polls(settings)},
        )
    except WaiterError as error:
        last = error.last_response or {}
        if last.get("LastUpdateStatus") == "Failed":
            reason = last.get("LastUpdateStatusReason", "no reason given")
            raise ApplyFailedError(f"{name}: update failed: {reason}") from error
        raise ProviderError(f"{name}: update did not settle: {error}", retryable=True) from error


def _call_update(clients: RegionClients, request: Mapping[str, Any]) -> None:
    try:
        clients.lambda_.update_function_configuration(**request)
    except clients.lambda_.exceptions.PreconditionFailedException as error:
        raise ConflictError(f"{request['FunctionName']}: stale RevisionId") from error


def _retrying_conflicts(settings: Settings) -> Retrying:
    """Retries while another update of the function is still in progress."""
    return Retrying(
        retry=retry_if_exception(lambda e: error_code(e) == "ResourceConflictException"),
        stop=stop_after_attempt(settings.conflict_retries),
        wait=wait_random_exponential(multiplier=settings.conflict_wait_s, max=30),
        reraise=True,
    )


def _update_batch_size(clients: RegionClients, uuid: str, size: int, settings: Settings) -> None:
    _retrying_conflicts(settings)(
        lambda: clients.lambda_.update_event_source_mapping(UUID=uuid, BatchSize=size)
    )
    for _ in range(polls(settings)):
        state = clients.lambda_.get_event_source_mapping(UUID=uuid).get("State", "")
        if state not in _SETTLING_STATES:
            return
        time.sleep(settings.update_poll_s)
    raise ProviderError(f"event source mapping {uuid} did not settle", retryable=True)


def polls(settings: Settings) -> int:
    """How many polls fit into the settle timeout."""
    return max(1, math.ceil(settings.update_timeout_s / settings.update_poll_s))


def _mappings(clients: RegionClients, name: str) -> list[dict[str, Any]]:
    paginator = clients.lambda_.get_paginator("list_event_source_mappings")
    return [
        mapping
        for page in paginator.paginate(FunctionName=name)
        for mapping in page.get("EventSourceMappings", [])
        if "BatchSize" in mapping
    ]
