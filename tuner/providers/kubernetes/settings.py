"""The options of the Kubernetes provider, as written under ``providers:`` in tuner.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tuner.providers.kubernetes.probe_pods import ProbePolicy
from tuner.providers.kubernetes.selectors import LabelSelector


class Settings(BaseModel):
    """Options of the Kubernetes provider.

    Example::

        providers:
          - type: kubernetes
            namespace: shop
            selector: {matchLabels: {tuner.dev/enabled: "true"}}
            prometheus_url: http://prometheus.monitoring:9090
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["kubernetes"] = "kubernetes"
    name: str = "kubernetes"
    """The provider name in function references (``kubernetes:<ns>/<kind>.<name>``)."""
    namespace: str = "default"
    selector: LabelSelector = Field(default_factory=LabelSelector.opt_in)
    """Which workloads are tuned; by default those labelled ``tuner.dev/enabled=true``."""
    kinds: tuple[Literal["deployment", "ksvc"], ...] = Field(
        default=("deployment", "ksvc"), min_length=1
    )
    """The kinds tuned.  Knative Services (``ksvc``) are optional: where Knative is not
    installed (404) or not granted (403), Deployments are still tuned and one warning says
    why the Services are not."""
    container: str | None = None
    """The container to size; default the first (or the ``tuner.dev/container`` annotation)."""
    api_url: str | None = None
    """API server URL without auth (tests); default in-cluster config, then kubeconfig."""
    allow_single_replica_restart: bool = False
    memory_source: Literal["auto", "metrics-api", "prometheus", "none"] = "auto"
    """Where peak memory comes from; ``auto`` is Prometheus when configured, else metrics API."""
    prometheus_url: str | None = None
    latency_metric: str | None = None
    """A request-duration histogram in seconds, e.g. ``http_request_duration_seconds``."""
    dependency_metric: str | None = None
    """A client-side request-duration histogram in seconds whose series carry ``namespace``,
    ``pod`` and ``dependency_label`` (the Service called), e.g. OpenTelemetry's
    ``http_client_request_duration_seconds``: each workload's dependencies as it sees them,
    and with ``latency_metric``, nodes' zones and EndpointSlices, how far they are (needs list
    on nodes, services and endpointslices)."""
    dependency_label: str = "server_address"
    """The label of ``dependency_metric`` that names the Service called."""
    timing_step_s: float = Field(default=15.0, ge=1)
    """The step of the request-rate series ``tuner topology --source timing`` mines: no
    shorter than Prometheus' scrape interval."""
    memory_min_mb: int = Field(default=64, ge=4)
    memory_max_mb: int = Field(default=32_768, ge=4)
    concurrency_max: int = Field(default=1000, ge=1)
    rollout_timeout_s: float = Field(default=300.0, ge=0)
    """How long apply waits for the rollout to finish; 0 returns once the API accepted it."""
    conflict_retries: int = Field(default=3, ge=0, le=10)
    """How often apply re-reads and retries after a 409 while its plan still holds."""
    request_timeout_s: float = Field(default=10.0, gt=0)
    probe: ProbePolicy = Field(default_factory=ProbePolicy)
    """Off by default: after an OOM kill, one pod of the Deployment serves real traffic at
    a higher limit for a while to measure its need (``{enabled: true, factor: 4,
    max_mb: 4096, for: 10m}``); needs create and delete on pods."""
