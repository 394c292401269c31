"""The ``channels:``, ``routing:`` and ``delivery:`` sections of tuner.yaml as typed models.

Example::

    channels:
      team-slack: {type: slack, webhook_url_env: SLACK_WEBHOOK_URL}
      oncall-mail:
        type: email
        host: smtp.example.com
        port: 587
        security: starttls          # or: tls (implicit TLS, port 465), none
        username: tuner
        password_file: /run/secrets/smtp-password
        from: tuner@example.com
        to: [oncall@example.com]
      hooks: {type: webhook, url_env: TUNER_HOOK_URL}
      console: {type: console}
    routing:
      group_by: [group]
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 4h
      default_channels: [console]

Secrets (webhook URLs, passwords) are only ever named: ``*_env`` for an environment
variable, ``*_file`` for a file.  Writing one literally is a configuration error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from tuner.domain.decisions import Decision
from tuner.domain.durations import Duration
from tuner.domain.errors import ConfigError
from tuner.engine.locating import located_problems

_SECRET_FIELDS = ("webhook_url", "url", "password", "token", "api_key")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ChannelSettingsBase(_Strict):
    """Options every channel has."""

    timeout: Duration = 10.0
    """How long one delivery attempt may take."""
    min_interval: Duration = 0.0
    """At least this long between two messages on this channel (a rate limit)."""
    resend_in_doubt: bool = False
    """After a crash in the middle of a send, send the message again (may duplicate it)."""
    secret_file: ClassVar[str | None] = None
    """The option naming a file that holds the channel's secret (the operator mounts it)."""

    @model_validator(mode="before")
    @classmethod
    def _no_literal_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in _SECRET_FIELDS:
                if name in data:
                    raise ValueError(
                        f"'{name}' is a secret and must not be written in the configuration: "
                        f"name an environment variable ({name}_env) or a file ({name}_file)"
                    )
        return data


def _one_source(env: str | None, file: Path | None, field: str, required: bool) -> None:
    if env is not None and file is not None:
        raise ValueError(f"give either {field}_env or {field}_file, not both")
    if required and env is None and file is None:
        raise ValueError(f"{field}_env or {field}_file is required")


class SlackChannelSettings(ChannelSettingsBase):
    """A Slack incoming webhook."""

    type: Literal["slack"]
    secret_file: ClassVar[str | None] = "webhook_url_file"
    webhook_url_env: str | None = None
    webhook_url_file: Path | None = None
    min_interval: Duration = 1.0
    """Slack allows about one message per second per webhook."""

    @model_validator(mode="after")
    def _url_source(self) -> SlackChannelSettings:
        _one_source(self.webhook_url_env, self.webhook_url_file, "webhook_url", True)
        return self


class EmailChannelSettings(ChannelSettingsBase):
    """An SMTP server and the addresses to write to."""

    type: Literal["email"]
    secret_file: ClassVar[str | None] = "password_file"
    host: str
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    """``starttls`` upgrades a plain connection, ``tls`` is implicit TLS (port 465)."""
    ca_file: Path | None = None
    """A CA bundle to verify the server with, instead of the system's."""
    username: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    subject_prefix: str = "[tuner]"

    @model_validator(mode="after")
    def _credentials(self) -> EmailChannelSettings:
        if self.username is not None and self.username_env is not None:
            raise ValueError("give either username or username_env, not both")
        has_user = self.username is not None or self.username_env is not None
        _one_source(self.password_env, self.password_file, "password", has_user)
        if not has_user and (self.password_env or self.password_file):
            raise ValueError("a password needs a username (username or username_env)")
        return self


class WebhookChannelSettings(ChannelSettingsBase):
    """Any HTTP endpoint that accepts a JSON POST."""

    type: Literal["webhook"]
    secret_file: ClassVar[str | None] = "url_file"
    url_env: str | None = None
    url_file: Path | None = None

    @model_validator(mode="after")
    def _url_source(self) -> WebhookChannelSettings:
        _one_source(self.url_env, self.url_file, "url", True)
        return self


class ConsoleChannelSettings(ChannelSettingsBase):
    """Readable text on the terminal, for local runs and demos."""

    type: Literal["console"]
    stream: Literal["stdout", "stderr"] = "stdout"


ChannelSettings = Annotated[
    SlackChannelSettings | EmailChannelSettings | WebhookChannelSettings | ConsoleChannelSettings,
    Field(discriminator="type"),
]

GroupField = Literal["group", "rule", "function", "provider", "severity", "dependency"]


class Route(_Strict):
    """More channels for the decisions that match every condition given.

    Example: ``{severity: [critical], channels: [oncall-mail]}``.
    """

    severity: list[Literal["info", "warning", "critical"]] | None = None
    rules: list[str] | None = None
    providers: list[str] | None = None
    outcomes: list[str] | None = None
    channels: list[str] = Field(min_length=1)

    def matches(self, decision: Decision) -> bool:
        """True when the decision meets every condition of this route."""
        return (
            _within(decision.severity.value, self.severity)
            and _within(decision.rule, self.rules)
            and _within(decision.ref.provider, self.providers)
            and _within(decision.state.value, self.outcomes)
        )


def _within(value: str, allowed: Sequence[str] | None) -> bool:
    return allowed is None or value in allowed


def _by_group() -> list[GroupField]:
    return ["group"]


class RoutingSettings(_Strict):
    """How decisions become messages: grouping, timing, inhibition (Alertmanager-like)."""

    group_by: list[GroupField] = Field(default_factory=lambda: _by_group(), min_length=1)
    """``group`` is the key the core proposes (``dependency:<name>`` or ``function:<key>``)."""
    group_wait: Duration = 30.0
    """How long a new group collects decisions before its first message."""
    group_interval: Duration = 300.0
    """How long to wait before telling a group's news (new or resolved findings)."""
    repeat_interval: Duration = 4 * 3600.0
    """How long before repeating a message about findings that are still there."""
    resolve_timeout: Duration = 3600.0
    """A finding no longer reported for this long counts as resolved."""
    send_resolved: bool = True
    inhibit: bool = True
    """A failing dependency silences the other findings of the functions that depend on it."""
    default_channels: list[str] = Field(default_factory=lambda: ["console"])
    """Where decisions go whose rule names no channel."""
    routes: list[Route] = Field(default_factory=list)
    """More channels by severity, rule, provider or outcome, on top of the rule's own."""
    storm_threshold: int = Field(default=10, ge=1)
    """More groups than this due at once on one channel are sent as one digest message."""


class DeliverySettings(_Strict):
    """Retries of the outbox."""

    retry_initial: Duration = 5.0
    retry_max: Duration = 600.0
    give_up_after: Duration = 24 * 3600.0
    """A message not delivered within this time is marked dead (and logged as an error)."""
    keep_sent: Duration = 7 * 86400.0
    """How long delivered messages stay in the outbox table."""


class NotifySettings(_Strict):
    """Everything the notifier is configured with."""

    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    templates: Path | None = None
    """A directory whose templates replace the bundled ones of the same name."""

    @model_validator(mode="after")
    def _known_channels(self) -> NotifySettings:
        if "console" not in self.channels:
            self.channels["console"] = ConsoleChannelSettings(type="console")
        named = {"routing.default_channels": self.routing.default_channels}
        for i, route in enumerate(self.routing.routes):
            named[f"routing.routes[{i}].channels"] = route.channels
        for where, names in named.items():
            unknown = [name for name in names if name not in self.channels]
            if unknown:
                raise ValueError(
                    f"{where} names unknown channels: {', '.join(unknown)} "
                    f"(configured: {', '.join(sorted(self.channels))})"
                )
        return self


def load_settings(
    raw: NotifySettings | Mapping[str, Any],
    source: str = "tuner.yaml",
    lines: Mapping[tuple[Any, ...], int] | None = None,
) -> NotifySettings:
    """Validated settings from a model or from the ``channels``/``routing``/... mapping.

    ``lines`` maps paths of the configuration file to lines, so problems are located.
    """
    if isinstance(raw, NotifySettings):
        return raw
    try:
        return NotifySettings.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(
            located_problems(error, source, lines or {}, model=NotifySettings)
        ) from None
