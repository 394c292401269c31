"""One duration grammar for rule files, tuner.yaml, notification settings and the command line."""

from __future__ import annotations

import pytest

from tuner.daemon.config import parse_config
from tuner.domain.durations import parse_duration
from tuner.domain.errors import ConfigError
from tuner.engine.rulefiles import parse_rules
from tuner.notify import load_settings


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("15m", 900.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("7d", 604800.0),
        (" 2h ", 7200.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["5 minutes", "5min", "-1", -1, "1e999", float("inf"), float("nan"), True, "", "h", None],
)
def test_what_is_not_a_duration(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_every_file_reads_the_same_compound_duration() -> None:
    config = parse_config("interval: 1h30m\nguard: {hysteresis: 1h30m}\n", "tuner.yaml")
    assert config.interval == config.guard.hysteresis_s == 5400.0
    rules = parse_rules(
        "rules:\n  - name: oom\n    when: ooms > 0.0\n    cooldown: 1h30m\n"
        "    actions: [{action: more-memory}]\n",
        "team.yaml",
    )
    assert rules.rules[0].rule.cooldown == 5400.0
    settings = load_settings({"routing": {"group_wait": "1h30m"}}, "tuner.yaml")
    assert settings.routing.group_wait == 5400.0


def test_a_bad_duration_is_located_in_the_file() -> None:
    with pytest.raises(ConfigError, match=r"tuner.yaml:2: field 'interval': .*not a duration"):
        parse_config("mode: apply\ninterval: 5 minutes\n", "tuner.yaml")
