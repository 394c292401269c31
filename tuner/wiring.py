"""Wiring: build a running tuner (providers, rules, store, notifier, daemon) from a config.

This is, with the CLI and the operator, the only place where concrete classes meet.
Providers and the notifier are imported lazily by name, so that a user of the local host
never imports boto3 or the Kubernetes client.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import ValidationError

from tuner.config import TunerConfig
from tuner.engine.rulefiles import validation_problems
from tuner.errors import ConfigError, Problem
from tuner.guard import GuardPolicy
from tuner.loop import Daemon, SystemClock
from tuner.ports import Clock, Notifier, Provider
from tuner.reloading import RuleSource
from tuner.store import SqliteStore
from tuner.verifying import VerifyPolicy

PROVIDERS = {
    "local": "tuner.providers.local",
    "aws": "tuner.providers.aws",
    "kubernetes": "tuner.providers.kubernetes",
    "sim": "tuner.providers.sim",
}
"""Provider type -> package exporting ``Settings`` and ``build(settings, *, clock)``."""


def _provider_module(kind: str, config: TunerConfig, index: int) -> ModuleType:
    if kind not in PROVIDERS:
        raise ConfigError(
            [
                Problem(
                    config.source or "tuner.yaml",
                    config.line_of("providers", index, "type"),
                    f"unknown provider type '{kind}'; known: {', '.join(PROVIDERS)}",
                    field=f"providers[{index}].type",
                )
            ]  # fmt: skip
        )
    try:
        return importlib.import_module(PROVIDERS[kind])
    except ImportError as exc:
        raise ConfigError(
            [
                Problem(
                    config.source or "tuner.yaml",
                    config.line_of("providers", index),
                    f"provider '{kind}' needs an extra: pip install 'tuner[{kind}]' ({exc.name} missing)",
                )
            ]  # fmt: skip
        ) from None


def provider_settings(config: TunerConfig) -> list[tuple[ModuleType, Any]]:
    """Validate each provider's section with that provider's own settings model."""
    out = []
    problems: list[Problem] = []
    for i, section in enumerate(config.providers):
        module = _provider_module(str(section.get("type")), config, i)
        try:
            out.append((module, module.Settings.model_validate(section)))
        except ValidationError as exc:
            for p in validation_problems(
                exc, config.source or "tuner.yaml", {}, section, rule_file=False
            ):
                p.line = config.line_of("providers", i, *_field_path(p.field))
                p.field = f"providers[{i}].{p.field}" if p.field else f"providers[{i}]"
                problems.append(p)
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
    source = config.source or "tuner.yaml"
    try:
        return load_settings(raw, source)
    except ConfigError as exc:
        for p in exc.problems:
            p.line = p.line or config.line_of(*_field_path(p.field))
        raise


def _field_path(field: str | None) -> tuple[Any, ...]:
    """``'channels.team.0'`` -> ``('channels', 'team', 0)``, a path into the loaded YAML."""
    return tuple(int(x) if x.isdigit() else x for x in field.split(".")) if field else ()


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
) -> Tuner:
    """Build a tuner from a configuration; ``providers``/``notifier`` override the configured ones."""
    clock = clock or SystemClock()
    rules = RuleSource(config.rule_paths())
    if providers is None:
        providers = [
            module.build(settings, clock=clock) for module, settings in provider_settings(config)
        ]
    store_path = config.store_path()
    if notifier is None:
        from tuner.notify import build_notifier

        settings = notify_settings(config)
        check_rule_channels(rules, set(settings.channels))
        store_path.parent.mkdir(parents=True, exist_ok=True)
        notifier = build_notifier(settings, store_path, clock)
    store = SqliteStore(store_path)
    g = config.guard
    daemon = Daemon(
        providers=providers,
        rules=rules,
        store=store,
        notifier=notifier,
        clock=clock,
        mode=config.mode,
        window_s=config.window_s,
        guard_policy=GuardPolicy(
            mode=config.mode,
            max_changes_per_cycle=g.max_changes_per_cycle,
            max_changes_per_hour=g.max_changes_per_hour,
            max_changes_per_function_per_day=g.max_changes_per_function_per_day,
            hysteresis_s=g.hysteresis,
            min_invocations=g.min_invocations,
        ),
        verify_policy=VerifyPolicy(**config.verify.model_dump()),
        attempts=config.attempts,
        retry_budget_s=config.retry_budget,
        retention_s=config.retention,
    )
    return Tuner(config, daemon, rules, store, providers, notifier)
