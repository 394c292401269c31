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
from tuner.daemon.control import ManualControl
from tuner.daemon.loop import Daemon, DaemonSettings, SystemClock
from tuner.daemon.reloading import RuleSource
from tuner.domain.errors import ConfigError, Problem
from tuner.domain.ports import Clock, Closable, Flushable, Notifier, Provider, Startable, Store
from tuner.domain.registry import UnknownNameError
from tuner.engine.locating import located_problems
from tuner.providers import PROVIDERS
from tuner.store.audit import SqliteStore


def _provider_module(kind: str, config: TunerConfig, index: int) -> ModuleType:
    source = config.source or "tuner.yaml"
    try:
        missing = PROVIDERS.entry(kind).missing()
    except UnknownNameError as exc:
        line = config.line_of("providers", index, "type")
        raise ConfigError(
            [Problem(source, line, str(exc), field=f"providers[{index}].type")]
        ) from None
    if missing:
        line = config.line_of("providers", index, "type")
        raise ConfigError([Problem(source, line, missing, field=f"providers[{index}].type")])
    return PROVIDERS.load(kind)


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
    from tuner.notify.channels import CHANNELS

    raw: dict[str, Any] = {"channels": config.channels}  # the console is always configured
    for key in ("routing", "delivery"):
        if getattr(config, key):
            raw[key] = getattr(config, key)
    if config.templates:
        base = Path(config.source).parent if config.source else Path.cwd()
        raw["templates"] = base / config.templates
    settings = load_settings(raw, config.source or "tuner.yaml", config.lines)
    problems = [
        Problem(
            config.source or "tuner.yaml",
            config.line_of("channels", name, "type"),
            why,
            field=f"channels.{name}.type",
        )
        for name, channel in settings.channels.items()
        if (why := CHANNELS.entry(channel.type).missing())
    ]
    if problems:
        raise ConfigError(problems)
    return settings


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
    """A wired tuner: the daemon, manual control and the parts they own, started and closed together."""

    config: TunerConfig
    daemon: Daemon
    control: ManualControl
    rules: RuleSource
    store: SqliteStore
    providers: list[Provider]
    notifier: Notifier | None
    _started: list[Startable] = field(default_factory=list)

    def start(self) -> None:
        """Start providers and the notifier, then settle intents a crash left open."""
        for part in [*self.providers, self.notifier]:
            if isinstance(part, Startable):
                part.start()
                self._started.append(part)
        self.daemon.reconcile()

    def close(self) -> None:
        """Stop what was started (in reverse order), flushing notifications, then the store."""
        if isinstance(self.notifier, Flushable):
            self.notifier.flush(5.0, include_waiting=True)  # waiting groups go out before we stop
        for part in reversed(self._started):
            if isinstance(part, Closable):
                part.close()
        self._started.clear()
        self.store.close()


def daemon_settings(config: TunerConfig) -> DaemonSettings:
    """The daemon's settings from a configuration."""
    return DaemonSettings(
        mode=config.mode,
        window_s=config.window_s,
        guard_policy=config.guard,
        verify_policy=config.verify,
        attempts=config.attempts,
        retry_budget_s=config.retry_budget,
        retention_s=config.retention,
    )


def manual_control(daemon: Daemon) -> ManualControl:
    """Manual control beside a daemon, sharing its store, applier, providers and lock."""
    control = ManualControl(
        daemon.store, daemon.applier, daemon.providers, daemon.lock, daemon.notify, daemon.mode
    )
    daemon.paused_by = control.paused_by
    return control


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
        settings=daemon_settings(config),
    )
    return Tuner(config, daemon, manual_control(daemon), rules, store, providers, notifier)
