"""The daemon's configuration file, ``tuner.yaml``: typed, validated, with located errors.

Example::

    mode: apply                 # observe | recommend | apply
    interval: 30s               # one cycle every interval; the window is the same length
    early_gap: 5s               # cycles run early for new OOMs, at most this often (0: never)
    rules: [rules/default.yaml] # files or folders; the bundled rules when omitted
    store: .tuner/tuner.db
    providers:
      - type: local
        functions_dir: examples/local
    channels:
      console: {type: console}
    routing:
      default_channels: [console]
    guard:
      max_changes_per_cycle: 20
    verify:
      windows: 3

Secrets never live here: channels name environment variables or files that hold them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from tuner.daemon.addresses import DEFAULT_ADDRESS, parse_address
from tuner.decisions.guard import GuardPolicy
from tuner.decisions.verifying import VerifyPolicy
from tuner.domain.durations import Duration
from tuner.domain.errors import ConfigError, Problem
from tuner.domain.model import Mode
from tuner.engine.locating import located_problems
from tuner.engine.yamlfiles import load_mapping, nearest_line, read_text

REPO_ROOT = Path(__file__).resolve().parents[2]


def bundled_rules() -> Path:
    """The bundled rule base, ``rules/default.yaml`` (current folder first, then the checkout)."""
    for base in (Path.cwd(), REPO_ROOT):
        candidate = base / "rules" / "default.yaml"
        if candidate.is_file():
            return candidate
    raise ConfigError([Problem("rules/default.yaml", None, "the bundled rule base is missing")])


class LogSettings(BaseModel):
    """Logging: readable lines (`auto`, `console`), or JSON lines for a log collector (`json`)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class TunerConfig(BaseModel):
    """The whole of ``tuner.yaml``."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode = Mode.APPLY
    interval: Duration = 30.0
    window: Duration | None = Field(
        None, description="Observation window; the interval when omitted."
    )
    early_gap: Duration | None = Field(
        None,
        description="A cycle runs early for functions a provider reports killed for memory as "
        "it happens, at most this often; a sixth of the interval (at most a minute) when "
        "omitted, 0 never.",
    )
    rules: list[str] = Field(default_factory=list, description="Rule files or folders.")
    store: str = ".tuner/tuner.db"
    retention: Duration = Field(30 * 86400.0, description="How long decisions are kept.")
    attempts: int = Field(3, ge=1, le=10, description="Tries per provider call.")
    retry_budget: Duration = Field(10.0, description="Longest wait between tries of one call.")
    providers: list[dict[str, Any]] = Field(default_factory=lambda: [{"type": "local"}])
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    routing: dict[str, Any] = Field(default_factory=dict)
    delivery: dict[str, Any] = Field(default_factory=dict)
    templates: str | None = Field(
        None, description="A folder of templates that replace the bundled ones."
    )
    guard: GuardPolicy = Field(default_factory=GuardPolicy)
    verify: VerifyPolicy = Field(default_factory=VerifyPolicy)
    log: LogSettings = Field(default_factory=LogSettings)
    http: str | None = Field(
        None,
        description=f"HOST:PORT or off: where the dashboard, API and metrics are served "
        f"(default {DEFAULT_ADDRESS}); `tuner status` and `tuner why` ask this address.",
    )
    source: str = Field("", exclude=True, description="Where this configuration was read from.")
    _lines: dict[tuple[Any, ...], int] = PrivateAttr(default_factory=dict)

    @property
    def lines(self) -> dict[tuple[Any, ...], int]:
        """The line of each setting in the configuration file, by its path in the data."""
        return self._lines

    def line_of(self, *path: Any) -> int | None:
        """The line of a setting in the configuration file, or of the nearest enclosing one."""
        return nearest_line(self._lines, path, shortest=1)

    def rule_paths(self) -> list[Path]:
        """The rule files to load, relative to the configuration file's folder."""
        if not self.rules:
            return [bundled_rules()]
        base = Path(self.source).parent if self.source else Path.cwd()
        return [p if p.is_absolute() else base / p for p in map(Path, self.rules)]

    def store_path(self) -> Path:
        """The SQLite file, relative to the configuration file's folder."""
        p = Path(self.store)
        if p.is_absolute() or not self.source:
            return p
        return Path(self.source).parent / p

    @field_validator("http", mode="before")
    @classmethod
    def _address(cls, value: Any) -> Any:
        """A HOST:PORT or ``off`` (which YAML reads as false when it is not quoted)."""
        if value is False:
            return "off"
        if isinstance(value, str):
            parse_address(value)
        return value

    @property
    def http_address(self) -> tuple[str, int] | None:
        """Where this configuration's daemon serves HTTP (None: it does not)."""
        return parse_address(self.http or DEFAULT_ADDRESS)

    @property
    def window_s(self) -> float:
        """The observation window in seconds."""
        return self.window or self.interval

    @property
    def early_gap_s(self) -> float:
        """The shortest gap between a cycle run early and the cycles around it (0: never early)."""
        return min(60.0, self.interval / 6) if self.early_gap is None else self.early_gap


def parse_config(text: str, source: str) -> TunerConfig:
    """Validate a configuration text; raise ConfigError naming file, line and field."""
    data, lines = load_mapping(text, source, "a configuration file is a mapping")
    try:
        config = TunerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(located_problems(exc, source, lines, model=TunerConfig)) from None
    for i, provider in enumerate(config.providers):
        if not isinstance(provider.get("type"), str):
            raise ConfigError(
                [
                    Problem(
                        source,
                        lines.get(("providers", i)),
                        "a provider needs a 'type'",
                        field="providers",
                    )
                ]
            )
    config.source = source
    config._lines = lines
    return config


def load_config(path: str | Path | None) -> TunerConfig:
    """Read ``tuner.yaml``; with no path, the embedded default (local host, bundled rules)."""
    if path is None:
        return TunerConfig()

    return parse_config(read_text(path), str(path))
