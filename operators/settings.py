"""The operator's own settings, read from environment variables the Helm chart sets."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from tuner.daemon.addresses import parse_address
from tuner.domain.errors import ConfigError, Problem

GROUP = "tuner.dev"
VERSION = "v1alpha1"
PLURAL = "tuningpolicies"


@dataclass(frozen=True)
class OperatorSettings:
    """Where the operator connects, keeps its state and how it elects a leader."""

    api_url: str | None = None
    """API server URL without auth (tests); default in-cluster config, then kubeconfig."""
    state_dir: Path = Path("/var/lib/tuner")
    """Per-policy rule files, secret files and SQLite stores (an emptyDir in the chart)."""
    default_rules: Path = Path("/etc/tuner/rules")
    """Rules for policies that name none: a file, or a folder of ``*.yaml`` rule files
    (the chart mounts its rules ConfigMap here)."""
    interval_s: float = 30.0
    """Default time between two cycles of a policy (a policy's ``interval`` overrides it)."""
    kinds: tuple[str, ...] = ("deployment", "ksvc")
    """The workload kinds of policies that name none (``TUNER_KINDS``, comma-separated)."""
    identity: str = field(default_factory=socket.gethostname)
    lease_namespace: str = "default"
    lease_name: str = "tuner-operator"
    lease_duration_s: float = 15.0
    lease_renew_s: float = 5.0
    oom_recency_s: float = 120.0
    """An OOM kill newer than this wakes the pod's policies at once."""
    http_address: tuple[str, int] | None = None
    """Where ``/healthz``, ``/readyz`` and ``/metrics`` are served (None: nowhere)."""
    channels_file: Path | None = None
    """YAML mapping of channel name to tuner.yaml channel options, given to every policy."""
    cluster_history_s: float = 8 * 86_400.0
    """How long a settled change stays in its policy's ``status.changes`` (cooldowns)."""

    @classmethod
    def from_env(cls) -> OperatorSettings:
        """Settings from ``TUNER_*`` environment variables (and ``POD_NAME``/``POD_NAMESPACE``)."""
        env = os.environ
        return cls(
            api_url=env.get("TUNER_API_URL") or None,
            state_dir=Path(env.get("TUNER_STATE_DIR", "/var/lib/tuner")),
            default_rules=Path(env.get("TUNER_DEFAULT_RULES", "/etc/tuner/rules")),
            interval_s=float(env.get("TUNER_INTERVAL_S", "30")),
            kinds=tuple(
                k.strip() for k in env.get("TUNER_KINDS", "deployment,ksvc").split(",") if k.strip()
            ),
            identity=env.get("POD_NAME") or socket.gethostname(),
            lease_namespace=env.get("POD_NAMESPACE", "default"),
            lease_name=env.get("TUNER_LEASE_NAME", "tuner-operator"),
            lease_duration_s=float(env.get("TUNER_LEASE_DURATION_S", "15")),
            lease_renew_s=float(env.get("TUNER_LEASE_RENEW_S", "5")),
            http_address=_address(env.get("TUNER_HTTP_ADDRESS", DEFAULT_HTTP_ADDRESS)),
            channels_file=Path(env["TUNER_CHANNELS_FILE"])
            if env.get("TUNER_CHANNELS_FILE")
            else None,
            cluster_history_s=float(env.get("TUNER_CLUSTER_HISTORY_S", str(8 * 86_400))),
        )


DEFAULT_HTTP_ADDRESS = "0.0.0.0:8780"  # noqa: S104 - probes and scrapes come from outside the pod


def _address(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` or ``off``; anything else is a ConfigError naming the variable."""
    try:
        return parse_address(text)
    except ValueError as exc:
        raise ConfigError([Problem("TUNER_HTTP_ADDRESS", None, str(exc))]) from None
