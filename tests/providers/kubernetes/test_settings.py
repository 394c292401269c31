"""The provider's section of tuner.yaml, validated and built through the daemon's wiring."""

from __future__ import annotations

import pytest
from kube_emulation import WallClock

from tuner.daemon.config import parse_config
from tuner.daemon.wiring import provider_settings
from tuner.domain.errors import ConfigError
from tuner.providers.kubernetes import KubernetesProvider, LabelSelector

CONFIG = """\
mode: recommend
providers:
  - type: kubernetes
    namespace: shop
    selector:
      matchLabels: {team: checkout}
      matchExpressions: [{key: tier, operator: In, values: [web, api]}]
    prometheus_url: http://prometheus:9090
    allow_single_replica_restart: true
"""


def test_a_kubernetes_section_becomes_the_providers_settings() -> None:
    [(module, settings)] = provider_settings(parse_config(CONFIG, "tuner.yaml"))
    assert settings.namespace == "shop"
    assert settings.selector.matches({"team": "checkout", "tier": "api"})
    assert not settings.selector.matches({"team": "checkout", "tier": "db"})
    assert settings.allow_single_replica_restart is True
    provider = module.build(settings, clock=WallClock())
    assert isinstance(provider, KubernetesProvider)
    assert provider.name == "kubernetes"


def test_the_default_selector_is_the_opt_in_label() -> None:
    [(_, settings)] = provider_settings(
        parse_config("providers: [{type: kubernetes}]\n", "tuner.yaml")
    )
    assert settings.selector == LabelSelector.opt_in()
    assert settings.namespace == "default"


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("{type: kubernetes, namspace: shop}", "namspace"),
        ("{type: kubernetes, kinds: [statefulset]}", "kinds"),
        ("{type: kubernetes, kinds: []}", "kinds"),
        (
            "{type: kubernetes, selector: {matchExpressions: [{key: a, operator: Near}]}}",
            "selector",
        ),
    ],
)
def test_mistakes_are_named(section: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        provider_settings(parse_config(f"providers: [{section}]\n", "tuner.yaml"))
    assert field in str(caught.value)
