"""The Kubernetes provider: Deployments and Knative Services as tunable functions.

Wiring imports this package by name from ``providers: [{type: kubernetes, ...}]`` and
calls :func:`build`.  The official ``kubernetes`` client is imported lazily, when the
provider first connects.
"""

from __future__ import annotations

from tuner.domain.ports import Clock
from tuner.providers.kubernetes.provider import KubernetesProvider
from tuner.providers.kubernetes.selectors import LabelSelector
from tuner.providers.kubernetes.settings import Settings

__all__ = ["KubernetesProvider", "LabelSelector", "Settings", "build"]


def build(settings: Settings, *, clock: Clock) -> KubernetesProvider:
    """A Kubernetes provider for the given settings; call ``start()`` before use."""
    return KubernetesProvider(settings, clock=clock)
