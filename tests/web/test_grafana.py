"""The Grafana dashboard: valid PromQL on metrics tuner exports, shipped by the Helm chart."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.operator.test_helm_chart import by_kind, render
from tuner.web.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "helm" / "tuner" / "dashboards" / "tuner.json"


def _exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def _exported() -> set[str]:
    from tuner.daemon.live import LiveState
    from tuner.web.fleet import Fleet

    metrics = Metrics()
    state = LiveState(60.0)
    metrics.watch(state, Fleet(state), lambda: 0)
    names = set()
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        names.add(family.name)
        names.update(s.name for s in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.add(family.name + "_bucket")
    return names


def test_every_panel_queries_a_metric_tuner_exports() -> None:
    exported = _exported()
    used = {m for e in _exprs() for m in re.findall(r"\btuner_[a-z_]+", e)}
    assert used and used <= exported, used - exported
    for name in (
        "tuner_cycles_total",
        "tuner_function_states",
        "tuner_decisions_total",
        "tuner_rollbacks_total",
        "tuner_notifications_total",
        "tuner_provider_calls_total",
    ):
        assert name in used, name


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("no promtool: install Debian's prometheus package")
    rules = [
        {
            "record": f"tuner:panel_{i}",
            "expr": e.replace("$__rate_interval", "5m").replace("$job", ".*"),
        }
        for i, e in enumerate(_exprs())
    ]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    check = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_chart_ships_the_dashboard_for_the_grafana_sidecar_only_when_asked() -> None:
    assert not [d for d in by_kind(render(), "ConfigMap") if "grafana" in d["metadata"]["name"]]
    docs = render("grafana.dashboard.enabled=true", "grafana.dashboard.folder=Serverless")
    [cm] = [d for d in by_kind(docs, "ConfigMap") if "grafana" in d["metadata"]["name"]]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Serverless"}
    assert json.loads(cm["data"]["tuner.json"]) == json.loads(DASHBOARD.read_text())
