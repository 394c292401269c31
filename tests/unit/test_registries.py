"""Providers, channels and actions are registered in one shape, and everything else derives from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from tuner.domain.registry import Registry, UnknownNameError
from tuner.engine.actions import ACTIONS, Action
from tuner.notify.channels import CHANNELS
from tuner.notify.settings import ChannelSettings
from tuner.providers import PROVIDERS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("registry", [PROVIDERS, CHANNELS, ACTIONS], ids=lambda r: r.kind)
def test_an_unknown_name_says_the_close_one_and_the_known_ones(registry: Registry[object]) -> None:
    first = next(iter(registry))
    typo = first[:-1] + ("x" if first[-1] != "x" else "y")
    with pytest.raises(UnknownNameError) as err:
        registry.entry(typo)
    assert f"unknown {registry.kind} '{typo}' (did you mean '{first}'?)" in str(err.value)
    assert all(name in str(err.value) for name in registry)
    assert registry.get(typo) is None


def test_every_provider_loads_as_a_package_of_the_same_shape() -> None:
    for name in PROVIDERS:
        module = PROVIDERS.load(name)
        assert callable(module.build) and hasattr(module.Settings, "model_validate"), name


def test_the_channel_settings_union_is_the_registry() -> None:
    members = get_args(get_args(ChannelSettings)[0])
    types = {get_args(m.model_fields["type"].annotation)[0] for m in members}
    assert types == set(CHANNELS)
    assert {e.settings for e in CHANNELS.entries()} == set(members)


def test_the_rule_schema_names_exactly_the_registered_actions() -> None:
    schema = json.loads((ROOT / "rules" / "schema.json").read_text())
    mapping = schema["$defs"]["Rule"]["properties"]["actions"]["items"]["discriminator"]["mapping"]
    assert set(mapping) == set(ACTIONS)
    assert {e.settings for e in ACTIONS.entries()} == set(get_args(get_args(Action)[0]))
