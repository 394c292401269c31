"""One TuningPolicy's running tuner: its files, its wired daemon, and its cycles.

Building a runner reads the policy's rules (inline or from a ConfigMap) and channel
secrets (from Secrets) through the API, writes them as files in the policy's state
folder, and wires a :class:`tuner.daemon.wiring.Tuner` from the resulting tuner.yaml.  Every
problem with the policy surfaces as :class:`tuner.domain.errors.ConfigError`.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import yaml
from pydantic import ValidationError

from operators.cluster_state import ClusterStateMirror
from operators.mirrored_store import MirroredStore
from operators.policies import TuningPolicySpec, tuner_document
from operators.settings import OperatorSettings
from tuner.daemon.config import parse_config
from tuner.daemon.reports import CycleReport
from tuner.daemon.wiring import Tuner, build
from tuner.domain.errors import ConfigError, Problem, ProviderError
from tuner.domain.ports import Store
from tuner.engine.locating import located_problems
from tuner.providers.kubernetes.api import KubeApi
from tuner.web.attaching import Insight, attach
from tuner.web.metrics import Metrics

log = structlog.get_logger(__name__)


@dataclass
class PolicyRunner:
    """A wired tuner for one policy; :meth:`cycle` runs one tuner cycle."""

    namespace: str
    name: str
    spec: TuningPolicySpec
    tuner: Tuner
    interval_s: float
    store: MirroredStore
    term: int = 0
    """The leadership term whose cluster state this runner has imported (0: none yet)."""
    insight: Insight | None = None
    """The tuner's live state and its hooks into the operator's metrics."""

    def take_over(self, term: int) -> None:
        """Import the policy's changes from the cluster and settle open intents, once a term.

        Raises :class:`ProviderError` when the cluster cannot be read: the policy then
        does not cycle until it can.
        """
        restored = self.store.restore()
        settled = self.tuner.daemon.reconcile()
        self.term = term
        log.info(
            "policy_taken_over",
            policy=f"{self.namespace}/{self.name}",
            term=term,
            restored=restored,
            settled=len(settled),
        )

    def cycle(self) -> CycleReport:
        """Run one cycle (observe, decide, apply, record, notify) for this policy."""
        return self.tuner.daemon.run_cycle()

    def close(self) -> None:
        """Stop the tuner's providers and notifier and close its store."""
        self.tuner.close()


def parse_spec(source: str, raw: dict[str, object]) -> TuningPolicySpec:
    """The validated spec, or ConfigError naming each invalid field."""
    try:
        return TuningPolicySpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(located_problems(exc, source, {})) from None


def _key_of(api: KubeApi, source: str, kind: str, namespace: str, name: str, key: str) -> str:
    plural = "configmaps" if kind == "ConfigMap" else "secrets"
    try:
        obj = api.get(f"/api/v1/namespaces/{namespace}/{plural}/{name}")
    except ProviderError as exc:
        raise ConfigError([Problem(source, None, f"{kind} {name}: {exc}")]) from None
    data = obj.get("data") or {}
    if key not in data:
        raise ConfigError([Problem(source, None, f"{kind} {name} has no key '{key}'")])
    value = str(data[key])
    return base64.b64decode(value).decode("utf-8") if kind == "Secret" else value


def _write(path: Path, text: str, *, private: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(partial, path)
    return path


def shared_channels(path: Path | None) -> dict[str, dict[str, Any]]:
    """The operator's channels from its channels file; ConfigError naming the file if bad."""
    if path is None:
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError([Problem(str(path), None, f"cannot read the channels: {exc}")]) from None
    if not isinstance(loaded, dict) or not all(isinstance(v, dict) for v in loaded.values()):
        raise ConfigError([Problem(str(path), None, "channels must map a name to its options")])
    return {str(name): dict(options) for name, options in loaded.items()}


def build_runner(
    settings: OperatorSettings,
    api: KubeApi,
    namespace: str,
    name: str,
    raw: dict[str, object],
    *,
    is_leader: Callable[[], bool] = lambda: True,
    metrics: Metrics | None = None,
) -> PolicyRunner:
    """Wire a tuner for a policy; raise ConfigError when the policy cannot run.

    The daemon's store is a :class:`MirroredStore`: changes are written to the policy's
    status while ``is_leader()``.  With ``metrics``, the tuner counts its cycles,
    decisions and calls there, and keeps a live state that tells whether it cycles.
    """
    source = f"TuningPolicy {namespace}/{name}"
    spec = parse_spec(source, raw)
    folder = settings.state_dir / namespace / name
    rules = spec.rules
    if rules.inline is not None:
        rules_file = _write(folder / "rules.yaml", rules.inline)
    elif rules.config_map_ref is not None:
        ref = rules.config_map_ref
        text = _key_of(api, source, "ConfigMap", namespace, ref.name, ref.key)
        rules_file = _write(folder / "rules.yaml", text)
    else:
        rules_file = settings.default_rules
    secret_files = {}
    for channel in spec.channels:
        if channel.secret_ref is not None:
            ref = channel.secret_ref
            secret = _key_of(api, source, "Secret", namespace, ref.name, ref.key)
            secret_files[channel.name] = _write(
                folder / "secrets" / channel.name, secret, private=True
            )
    document = tuner_document(
        spec,
        namespace=namespace,
        name=name,
        api_url=settings.api_url,
        rules_file=rules_file,
        store_file=folder / "tuner.db",
        secret_files=secret_files,
        default_interval_s=settings.interval_s,
        default_kinds=settings.kinds,
        shared_channels=shared_channels(settings.channels_file),
    )
    config = parse_config(yaml.safe_dump(document), source)
    mirror = ClusterStateMirror(api, namespace, name)

    def mirrored(local: Store) -> MirroredStore:
        return MirroredStore(local, mirror, may_write=is_leader, keep_s=settings.cluster_history_s)

    tuner = build(config, wrap_store=mirrored)
    store = tuner.daemon.store
    assert isinstance(store, MirroredStore)
    insight = attach(tuner, None, metrics=metrics) if metrics is not None else None
    tuner.start()
    log.info("policy_wired", policy=f"{namespace}/{name}", mode=spec.mode, rules=str(rules_file))
    return PolicyRunner(namespace, name, spec, tuner, config.interval, store, insight=insight)


def forget(settings: OperatorSettings, namespace: str, name: str) -> None:
    """Remove a deleted policy's files (rules, secrets, store)."""
    shutil.rmtree(settings.state_dir / namespace / name, ignore_errors=True)
