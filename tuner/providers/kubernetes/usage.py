"""Memory usage of pods from the resource metrics API (``metrics.k8s.io``)."""

from __future__ import annotations

import structlog

from tuner.domain.errors import ProviderError
from tuner.providers.kubernetes.api import KubeApi, NotFoundError
from tuner.providers.kubernetes.quantities import bytes_to_mb, parse_bytes

log = structlog.get_logger(__name__)

PodContainer = tuple[str, str]
"""A (pod name, container name) pair."""


def metrics_api_usage(api: KubeApi, namespace: str) -> dict[PodContainer, float]:
    """Current working-set memory (MB) of every container in the namespace.

    The metrics API reports a recent sample, not a peak over a window: tuner uses the
    highest sample across a workload's pods.  Empty when metrics-server is not installed.
    """
    path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"
    try:
        items = api.list(path)
    except NotFoundError:
        return {}
    except ProviderError as exc:
        log.warning("metrics_api_unavailable", namespace=namespace, error=str(exc))
        return {}
    usage: dict[PodContainer, float] = {}
    for item in items:
        pod = item.get("metadata", {}).get("name", "")
        for container in item.get("containers") or []:
            memory = (container.get("usage") or {}).get("memory")
            if memory is not None:
                usage[(pod, container.get("name", ""))] = bytes_to_mb(parse_bytes(memory))
    return usage
