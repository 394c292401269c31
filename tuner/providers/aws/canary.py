"""Changes through weighted alias routing: a new version on a share of an alias's real traffic.

With ``canary`` set, a memory, timeout or cache change of a function whose alias points at a
published version is not made for all traffic at once.  The unpublished configuration
($LATEST) takes the new values and is published as a new version whose description marks it
as tuner's (the share, the alias, the version beside it); the alias then gives that version
its share of the traffic (``RoutingConfig.AdditionalVersionWeights``).  While the alias
routes exactly so, the function's configuration is the new version's, and its facts are the
new version's invocations alone (see :func:`.facts.canary_facts`).  A change judged to stay is
promoted (the alias points wholly at the new version); one judged worse is rolled back
through :func:`apply`, which routes all traffic back and puts $LATEST back.

The version's description is the durable record: after a restart the provider finds its
canaries from the aliases alone.  A routing a person changed (another share, another
version) is no longer tuner's: it is never promoted or routed back over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from tuner.domain.errors import ConflictError, ProviderError
from tuner.domain.model import Change, FunctionConfig, Knob, Target
from tuner.providers.aws import actuating
from tuner.providers.aws.aliases import MARK, AliasView, alias_view, version_config
from tuner.providers.aws.clients import RegionClients
from tuner.providers.aws.configs import config_from, environment_of
from tuner.providers.aws.settings import Settings

log = structlog.get_logger(__name__)

CANARY_KNOBS = frozenset({Knob.MEMORY_MB, Knob.TIMEOUT_S, Knob.CACHE_TTL_S})
"""Knobs a published version carries; batch sizes belong to event source mappings."""
_SAME_CODE = ("CodeSha256", "Handler", "Runtime", "Layers", "Role", "Architectures")
"""Fields of $LATEST that must match the version the alias serves before it is published."""


def read_view(
    clients: RegionClients, name: str, settings: Settings
) -> tuple[FunctionConfig, AliasView | None]:
    """The function's live configuration as its alias serves it, and the alias's view."""
    _, latest, view = _read(clients, name, settings)
    return (view.config if view else latest), view


def _read(
    clients: RegionClients, name: str, settings: Settings
) -> tuple[dict[str, Any], FunctionConfig, AliasView | None]:
    """$LATEST (raw and as a configuration) and the alias's view of the function."""
    latest_raw, _, latest = actuating.read_live(clients, name, settings)
    sizes = [latest.batch_size] if latest.batch_size is not None else []
    return latest_raw, latest, alias_view(clients, name, latest.revision, sizes, settings)


def apply(
    clients: RegionClients,
    target: Target,
    changes: Sequence[Change],
    settings: Settings,
    reason: str,
) -> AliasView | None:
    """Apply changes through the alias and return its view after; None: not for the alias.

    None when canaries are off, a change is not one a version carries, or the function has
    no alias serving a published version: the caller changes the whole function then.  With
    tuner's canary in flight, changes back to the primary's values route all traffic back (a
    rollback); any other change waits for the canary's verdict.  After a promotion, changes
    back to the values of the version it replaced route all traffic back to that version.
    """
    canary = settings.canary
    if canary is None or not changes or any(c.knob not in CANARY_KNOBS for c in changes):
        return None
    name = target.ref.name
    latest_raw, latest, view = _read(clients, name, settings)
    if view is None:
        return None
    wanted = actuating.wanted_values(changes)
    if _holds(view.config, wanted):
        return view
    back = _way_back(clients, name, view, settings)
    if back is not None and _holds(config_from(back[1], [], settings.cache_env_var), wanted):
        # a rollback: all traffic to the version the canary was tried beside (or replaced)
        version, raw = back
        restored = _put_back(clients, name, raw, latest_raw, _values(view.config), settings)
        _route(clients, name, view, version, {})
        log.info(
            "routed back",
            function=target.ref.key,
            version=version,
            alias=view.alias,
            restored=restored,
        )
        return _reread(clients, name, settings)
    if view.canary is not None:
        raise ProviderError(
            f"{target.ref.key}: version {view.canary.version} is on trial on alias {view.alias}: "
            "one change at a time"
        )
    if view.weights:
        shared = ", ".join(sorted(view.weights))
        raise ProviderError(
            f"{target.ref.key}: alias {view.alias} shares traffic with version {shared} outside "
            "tuner: left as it is"
        )
    if target.config.revision != view.config.revision:
        raise ConflictError(f"{target.ref.key} or its alias changed since it was read")
    _check_published(target.ref.key, latest_raw, view, wanted, settings.cache_env_var)
    return _start(clients, target, view, latest_raw, latest.revision, wanted, settings, reason)


def promote(clients: RegionClients, name: str, change: Change, settings: Settings) -> str:
    """Point the alias wholly at tuner's canary carrying ``change``; return what was done.

    '' when there is nothing to promote (no alias, or it was promoted already); a note when
    the alias was changed outside tuner, which is left as it is.  A concurrent change of the
    alias raises :class:`ConflictError`.
    """
    if settings.canary is None or change.knob not in CANARY_KNOBS:
        return ""
    _, view = read_view(clients, name, settings)
    if view is None:
        return ""
    carries = view.config.get(change.knob) == actuating.wanted_values([change])[change.knob]
    if view.canary is None:
        promoted = not view.weights and MARK.match(str(view.primary_raw.get("Description") or ""))
        if promoted and carries:
            return ""
        return f"alias {view.alias} was changed outside tuner: not promoted, left as it is"
    if not carries:
        return f"alias {view.alias} tries another change: not promoted, left as it is"
    _route(clients, name, view, view.canary.version, {})
    log.info("canary promoted", function=name, version=view.canary.version, alias=view.alias)
    return f"promoted: alias {view.alias} sends all traffic to version {view.canary.version}"


def abandon(
    clients: RegionClients, name: str, changes: Sequence[Change], settings: Settings
) -> str:
    """Put $LATEST back after a canary a crash interrupted before the alias took it.

    Only knobs that still hold the values tuner set are put back (a person's later change
    stays); a version published on the way carries no traffic and is left.  Returns what
    was done ('' nothing).
    """
    if settings.canary is None or not changes or any(c.knob not in CANARY_KNOBS for c in changes):
        return ""
    latest_raw, _, view = _read(clients, name, settings)
    if view is None or view.canary is not None:
        return ""
    wanted = actuating.wanted_values(changes)
    restored = _put_back(clients, name, view.primary_raw, latest_raw, wanted, settings)
    if not restored:
        return ""
    return f"$LATEST put back to what alias {view.alias} serves: {', '.join(restored)}"


# ------------------------------------------------------------------ steps


def _start(
    clients: RegionClients,
    target: Target,
    view: AliasView,
    latest_raw: Mapping[str, Any],
    latest_revision: str,
    wanted: Mapping[Knob, float | int],
    settings: Settings,
    reason: str,
) -> AliasView:
    """Update $LATEST, publish it, and give the new version its share of the alias."""
    assert settings.canary is not None
    name = target.ref.name
    weight = settings.canary.weight
    pending = {k: v for k, v in wanted.items() if view.config.get(k) != v}
    update = actuating.function_update(pending, environment_of(latest_raw), settings.cache_env_var)
    actuating.update_function(clients, name, latest_revision, update, settings)
    changed = "; ".join(f"{k.value} {view.config.get(k)} -> {v}" for k, v in pending.items())
    mark = (
        f"tuner canary: {weight:g} of alias {view.alias} beside version {view.primary}; {changed}"
    )
    if reason:
        mark += f" ({reason})"
    try:
        fresh = clients.lambda_.get_function_configuration(FunctionName=name)
        guards = {"CodeSha256": latest_raw.get("CodeSha256"), "RevisionId": fresh.get("RevisionId")}
        published = clients.lambda_.publish_version(
            FunctionName=name,
            Description=mark[:256],
            **{key: str(value) for key, value in guards.items() if value},
        )
        version = str(published["Version"])
        clients.lambda_.get_waiter("published_version_active").wait(
            FunctionName=name,
            Qualifier=version,
            WaiterConfig={
                "Delay": settings.update_poll_s,
                "MaxAttempts": actuating.polls(settings),
            },
        )
        _route(clients, name, view, view.primary, {version: weight})
    except Exception:
        current = clients.lambda_.get_function_configuration(FunctionName=name)
        _put_back(clients, name, view.primary_raw, current, wanted, settings)
        raise
    log.info(
        "canary started",
        function=target.ref.key,
        version=version,
        alias=view.alias,
        weight=weight,
        changes=changed,
    )
    return _reread(clients, name, settings)


def _route(
    clients: RegionClients, name: str, view: AliasView, version: str, weights: Mapping[str, float]
) -> None:
    """Point the alias at ``version`` with ``weights`` on others, if it is as it was read."""
    request: dict[str, Any] = {
        "FunctionName": name,
        "Name": view.alias,
        "FunctionVersion": version,
        "RoutingConfig": {"AdditionalVersionWeights": dict(weights)},
    }
    if view.alias_revision:
        request["RevisionId"] = view.alias_revision
    try:
        clients.lambda_.update_alias(**request)
    except clients.lambda_.exceptions.PreconditionFailedException as error:
        raise ConflictError(f"{name}: alias {view.alias} changed since it was read") from error


def _put_back(
    clients: RegionClients,
    name: str,
    served_raw: Mapping[str, Any],
    latest_raw: Mapping[str, Any],
    tuners: Mapping[Knob, float | int | None],
    settings: Settings,
) -> list[str]:
    """Give $LATEST a served version's values where it still holds tuner's; what was put back."""
    latest = config_from(latest_raw, [], settings.cache_env_var)
    primary = config_from(served_raw, [], settings.cache_env_var)
    back = {
        knob: primary.get(knob)
        for knob, value in tuners.items()
        if value is not None and latest.get(knob) == value and primary.get(knob) != value
    }
    if not back:
        return []
    update: dict[str, Any] = {}
    if Knob.MEMORY_MB in back:
        update["MemorySize"] = served_raw["MemorySize"]
    if Knob.TIMEOUT_S in back:
        update["Timeout"] = served_raw["Timeout"]
    if Knob.CACHE_TTL_S in back:
        environment = environment_of(latest_raw)
        served = environment_of(served_raw).get(settings.cache_env_var)
        environment.pop(settings.cache_env_var, None)
        if served is not None:
            environment[settings.cache_env_var] = served
        update["Environment"] = {"Variables": environment}
    revision = str(latest_raw.get("RevisionId", ""))
    actuating.update_function(clients, name, revision, update, settings)
    return [f"{k.value} {latest.get(k)} -> {v}" for k, v in back.items()]


def _check_published(
    key: str,
    latest_raw: Mapping[str, Any],
    view: AliasView,
    wanted: Mapping[Knob, float | int],
    cache_env_var: str,
) -> None:
    """Refuse to publish $LATEST when it holds more than what the alias serves (a person's work)."""
    differ = [f for f in _SAME_CODE if latest_raw.get(f) != view.primary_raw.get(f)]
    for knob, field in ((Knob.MEMORY_MB, "MemorySize"), (Knob.TIMEOUT_S, "Timeout")):
        if knob not in wanted and latest_raw.get(field) != view.primary_raw.get(field):
            differ.append(field)
    environments = [environment_of(latest_raw), environment_of(view.primary_raw)]
    if Knob.CACHE_TTL_S in wanted:
        for environment in environments:
            environment.pop(cache_env_var, None)
    if environments[0] != environments[1]:
        differ.append("Environment")
    if differ:
        raise ProviderError(
            f"{key}: $LATEST differs from version {view.primary} that alias {view.alias} serves "
            f"({', '.join(differ)}): publish or revert it first; no canary started"
        )


def _way_back(
    clients: RegionClients, name: str, view: AliasView, settings: Settings
) -> tuple[str, Mapping[str, Any]] | None:
    """The version a rollback routes all traffic to, with its configuration; None: none.

    With a canary in flight, the version it is tried beside; after a promotion (the alias
    wholly on a tuner canary), the version that canary replaced.
    """
    if view.canary is not None:
        return view.primary, view.primary_raw
    promoted = MARK.match(str(view.primary_raw.get("Description") or ""))
    if promoted is None or view.weights:
        return None
    return promoted["primary"], version_config(clients, name, promoted["primary"])


def _reread(clients: RegionClients, name: str, settings: Settings) -> AliasView:
    _, view = read_view(clients, name, settings)
    if view is None:
        raise ProviderError(
            f"{name}: alias {settings.canary.alias if settings.canary else ''} gone"
        )
    return view


def _holds(config: FunctionConfig, wanted: Mapping[Knob, float | int]) -> bool:
    return all(config.get(knob) == value for knob, value in wanted.items())


def _values(config: FunctionConfig) -> dict[Knob, float | int | None]:
    return {knob: config.get(knob) for knob in CANARY_KNOBS}
