"""Wiring: build a running tuner (providers, rules, store, notifier, daemon) from a config.

This is, with the CLI and the operator, the only place where concrete classes meet.
Providers come from their registry (:data:`tuner.providers.PROVIDERS`) and, like the
notifier, are imported only when configured, so that a user of the local host never
imports boto3 or the Kubernetes client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import ValidationError

from tuner.daemon.config import TunerConfig
from tuner.daemon.loop import Daemon, SystemClock
from tuner.daemon.reloading import RuleSource
from tuner.domain.errors import ConfigError, Problem
from tuner.domain.ports import Clock, Notifier, Provider, Store
from tuner.domain.registry import UnknownNameError
from tuner.engine.locating import located_problems
from tuner.providers import PROVIDERS
from tuner.store.audit import SqliteStore


def _provider_module(kind: str, config: TunerConfig, index: int) -> ModuleType:
    source = config.source or "tuner.yaml"
    try:
        return PROVIDERS.load(kind)
    except UnknownNameError as exc:
        line = config.line_of("providers", index, "type")
        raise ConfigError(
            [Problem(source, line, str(exc), field=f"providers[{index}].type")]
        ) from None
    except ImportError as exc:
        why = f"provider '{kind}' needs an extra: pip install 'tuner[{kind}]' ({exc.name} missing)"
        raise ConfigError([Problem(source, config.line_of("providers", index), why)]) from None


def provider_settings(config: TunerConfig) -> list[tuple[ModuleType, Any]]:
    """Validate each provider's section with that provider's own settings model."""
    out = []
    problems: list[Problem] = []
    for i, section in enumerate(config.providers):
        module = _provider_module(str(section.get("type")), config, i)
        try:
            out.append((module, module.Settings.model_validate(section)))
        except ValidationError as exc:
            source = config.source or "tuner.yaml"
            problems.extend(
                located_problems(
                    exc, source, config.lines, model=module.Settings, prefix=("providers", i)
                )
            )
    if problems:
        raise ConfigError(problems)
    return out


def notify_settings(config: TunerConfig) -> Any:
    """The notification settings, validated, with problems located in the configuration file."""
    from tuner.notify import load_settings

    raw: dict[str, Any] = {"channels": config.channels}  # the console is always configured
    for key in ("routing", "delivery"):
        if getattr(config, key):
            raw[key] = getattr(config, key)
    if config.templates:
        base = Path(config.source).parent if config.source else Path.cwd()
        raw["templates"] = base / config.templates
    return load_settings(raw, config.source or "tuner.yaml", config.lines)


def check_rule_channels(rules: RuleSource, channels: set[str]) -> None:
    """Every channel a rule names must be configured: a located error otherwise."""
    problems = [
        Problem(
            r.source,
            r.line,
            f"unknown channel '{name}'; configured: {', '.join(sorted(channels))}",
            r.name,
            "notify",
        )
        for r in rules().rules
        for name in r.rule.notify
        if name not in channels
    ]
    if problems:
        raise ConfigError(problems)


@dataclass
class Tuner:
    """A wired tuner: the daemon and the parts it owns, started and closed together."""

    config: TunerConfig
    daemon: Daemon
    rules: RuleSource
    store: SqliteStore
    providers: list[Provider]
    notifier: Notifier | None
    _started: list[Any] = field(default_factory=list)

    def start(self) -> None:
        """Start providers and the notifier, then settle intents a crash left open."""
        for part in [*self.providers, self.notifier]:
            start = getattr(part, "start", None)
            if start is not None:
                start()
                self._started.append(part)
        self.daemon.reconcile()

    def close(self) -> None:
        """Stop what was started (in reverse order), flushing notifications, then the store."""
        flush = getattr(self.notifier, "flush", None)
        if flush is not None:
            flush(5.0, include_waiting=True)  # groups still waiting go out before we stop
        for part in reversed(self._started):
            close = getattr(part, "close", None)
            if close is not None:
                close()
        self._started.clear()
        self.store.close()


def build(
    config: TunerConfig,
    *,
    clock: Clock | None = None,
    providers: list[Provider] | None = None,
    notifier: Notifier | None = None,
    wrap_store: Callable[[Store], Store] | None = None,
) -> Tuner:
    """Build a tuner from a configuration; ``providers``/``notifier`` override the configured ones.

    ``wrap_store`` wraps the audit store the daemon writes through (the operator mirrors
    its safety state into the cluster this way).
    """
    clock = clock or SystemClock()
    rules = RuleSource(config.rule_paths())
    chosen = provider_settings(config) if providers is None else []
    store_path = config.store_path()
    if notifier is None:
        settings = notify_settings(config)
        check_rule_channels(rules, set(settings.channels))
    # Claimed before anything starts (a provider's ports, state, workers' users): a second
    # daemon on the same store stops here, with one line, having touched nothing.
    store = SqliteStore(store_path, hold=True)
    try:
        if providers is None:
            providers = [module.build(options, clock=clock) for module, options in chosen]
        if notifier is None:
            from tuner.notify import build_notifier

            notifier = build_notifier(settings, store_path, clock)
    except BaseException:
        store.close()
        raise
    daemon = Daemon(
        providers=providers,
        rules=rules,
        store=wrap_store(store) if wrap_store is not None else store,
        notifier=notifier,
        clock=clock,
        mode=config.mode,
        window_s=config.window_s,
        guard_policy=config.guard,
        verify_policy=config.verify,
        attempts=config.attempts,
        retry_budget_s=config.retry_budget,
        retention_s=config.retention,
    )
    return Tuner(config, daemon, rules, store, providers, notifier)
