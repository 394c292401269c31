"""Probes on Kubernetes: one pod of an OOM-killed Deployment at a higher limit, against the emulator.

The emulated API server stores what tuner creates and deletes; the probe's peak comes from
Debian's Prometheus, backfilled with promtool; the bundled ``oom`` rule then sizes the
Deployment from that peak in one step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_emulation import EmulatorThread
from kube_objects import deployment, knative_service, pod, seed, stamp
from prometheus_backfill import backfilled_prometheus
from structlog.testing import capture_logs

from tests.fakes import FakeClock
from tuner.daemon.config import bundled_rules, parse_config
from tuner.daemon.wiring import provider_settings
from tuner.domain.errors import ConfigError
from tuner.domain.model import FunctionRef, Target, WindowFacts
from tuner.engine import Streaks, build_facts, evaluate, load_rules
from tuner.engine.actions import Plan
from tuner.engine.rulefiles import RuleBase
from tuner.engine.sizing import probe_need
from tuner.providers.kubernetes import Settings, build
from tuner.providers.kubernetes.api import KubeApi
from tuner.providers.kubernetes.probe_pods import PROBE_LABEL, probe_pod_name
from tuner.providers.kubernetes.provider import KubernetesProvider

PODS = "/api/v1/namespaces/{ns}/pods"
PROBES_ON = {"enabled": True, "factor": 4, "max_mb": 4096, "for": "10m"}
MIB = 1024 * 1024


def make_provider(
    cluster: EmulatorThread, namespace: str, clock: FakeClock, **options: Any
) -> KubernetesProvider:
    settings = Settings(namespace=namespace, api_url=cluster.url, **options)
    provider = build(settings, clock=clock)
    provider.start()
    return provider


def probe_pods(kube: KubeApi, namespace: str) -> list[dict[str, Any]]:
    pods = kube.list(PODS.format(ns=namespace))
    return [p for p in pods if PROBE_LABEL in (p["metadata"].get("labels") or {})]


def oom_killed_api(kube: KubeApi, namespace: str, killed_at: float) -> None:
    """A Deployment ``api`` (256 MB and a 64 MB sidecar) whose pod was just OOM-killed."""
    workload = deployment("api", namespace, memory="256Mi", sidecar=True)
    workload["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] = "5d8f7"
    labels = {"app": "api", "pod-template-hash": "5d8f7"}
    seed(kube, workload, pod("api-1", namespace, labels, oom_at=killed_at, restarts=2))


def kill_and_observe(provider: KubernetesProvider, kube: KubeApi, now: float) -> WindowFacts:
    """Seed the OOM-killed ``api`` and observe the minute in which it was killed."""
    oom_killed_api(kube, provider.settings.namespace, now - 10)
    return api_facts(provider, now - 60, now)


def api_facts(provider: KubernetesProvider, start: float, end: float) -> WindowFacts:
    facts = provider.observe(provider.targets(), start, end)
    return facts[FunctionRef("kubernetes", "deployment.api", provider.settings.namespace)]


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture()
def probing(cluster: EmulatorThread, namespace: str, clock: FakeClock) -> Iterator[Any]:
    provider = make_provider(cluster, namespace, clock, probe=PROBES_ON)
    yield provider
    provider.close()


def test_an_oom_kill_starts_one_probe_pod_at_a_raised_limit(
    probing: KubernetesProvider, kube: KubeApi, namespace: str, clock: FakeClock
) -> None:
    now = clock.now()
    facts = kill_and_observe(probing, kube, now)

    [probe] = probe_pods(kube, namespace)
    meta, spec = probe["metadata"], probe["spec"]
    assert meta["name"] == probe_pod_name("api", now)
    assert meta["labels"] == {"app": "api", PROBE_LABEL: "api"}  # served, never adopted
    live = kube.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/api")
    [owner] = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Deployment",
        "api",
        live["metadata"]["uid"],
    )
    assert owner["controller"] is False
    app, proxy = spec["containers"]
    assert app["resources"] == {"limits": {"memory": "1024Mi"}, "requests": {"memory": "1024Mi"}}
    assert proxy["resources"]["limits"]["memory"] == "64Mi"  # the other container is as it was
    assert (spec["activeDeadlineSeconds"], spec["restartPolicy"]) == (600, "Never")
    note = json.loads(meta["annotations"][PROBE_LABEL])
    assert note["memory_mb"] == 1024 and "OOM-killed at 256 MB" in note["reason"]
    # The probe measured nothing yet: the window says so, and sizing has no probe to read.
    assert facts.ooms == 1 and facts.extra["pods"] == 1.0
    assert facts.extra["probe_pending"] == 1.0
    assert "probe_peak_memory_mb" not in facts.extra


def test_one_probe_at_a_time_ended_when_its_time_is_up_and_none_again_within_for(
    probing: KubernetesProvider, kube: KubeApi, namespace: str, clock: FakeClock
) -> None:
    start = clock.now()
    kill_and_observe(probing, kube, start)
    [first] = probe_pods(kube, namespace)

    clock.advance(30)  # still killed, a probe running: no second one
    facts = api_facts(probing, start - 60, clock.now())
    assert [p["metadata"]["name"] for p in probe_pods(kube, namespace)] == [
        first["metadata"]["name"]
    ]
    assert facts.extra["pods"] == 1.0  # the probe pod is not one of the Deployment's pods

    clock.t = start + 600  # its time is up: tuner deletes it, and starts none right away
    api_facts(probing, start - 60, clock.now())
    assert probe_pods(kube, namespace) == []

    clock.t = start + 1200  # `for` after it ended, but this limit was measured already
    api_facts(probing, start - 60, clock.now())
    assert probe_pods(kube, namespace) == []

    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/api"
    live = kube.get(path)
    containers = live["spec"]["template"]["spec"]["containers"]
    containers[0]["resources"] = {"limits": {"memory": "512Mi"}, "requests": {"memory": "512Mi"}}
    kube.patch(path, {"spec": {"template": {"spec": {"containers": containers}}}})
    pod_path = f"/api/v1/namespaces/{namespace}/pods/api-1"  # its pod, now at 512Mi
    kube.patch(
        pod_path,
        {
            "spec": {
                "containers": [{**kube.get(pod_path)["spec"]["containers"][0], **containers[0]}]
            }
        },
    )
    clock.t = start + 1201  # killed at a new limit: a new probe
    api_facts(probing, start - 60, clock.now())
    [second] = probe_pods(kube, namespace)
    assert second["metadata"]["name"] != first["metadata"]["name"]
    assert second["spec"]["containers"][0]["resources"]["limits"]["memory"] == "2048Mi"


def test_probes_wait_for_each_other_and_for_room(
    cluster: EmulatorThread, kube: KubeApi, namespace: str, clock: FakeClock
) -> None:
    policy = dict(PROBES_ON, max_running=1)
    provider = make_provider(cluster, namespace, clock, probe=policy)
    now = clock.now()
    oom_killed_api(kube, namespace, now - 10)
    seed(
        kube,
        deployment("cart", namespace, replicas=1),
        pod("cart-1", namespace, {"app": "cart"}, oom_at=now - 5, restarts=1),
    )
    facts = provider.observe(provider.targets(), now - 60, now)
    probed = [p["metadata"]["labels"][PROBE_LABEL] for p in probe_pods(kube, namespace)]
    assert len(probed) == 1  # one at a time across the namespace
    waiting = "cart" if probed == ["api"] else "api"
    assert all(f.ooms == 1 for f in facts.values())
    clock.advance(600)  # the first probe's time is up; the other Deployment's turn
    provider.observe(provider.targets(), now - 60, clock.now())
    assert [p["metadata"]["labels"][PROBE_LABEL] for p in probe_pods(kube, namespace)] == [waiting]
    provider.close()


@pytest.mark.parametrize(
    ("options", "probed"),
    [
        ({"memory_max_mb": 600}, "600Mi"),  # never more than tuner may give the workload
        ({"probe": dict(PROBES_ON, max_mb=512)}, "512Mi"),
        ({"memory_max_mb": 256}, None),  # nothing above the limit to probe at
    ],
)
def test_a_probe_stays_within_the_caps(
    cluster: EmulatorThread,
    kube: KubeApi,
    namespace: str,
    clock: FakeClock,
    options: dict[str, Any],
    probed: str | None,
) -> None:
    provider = make_provider(cluster, namespace, clock, **{"probe": PROBES_ON, **options})
    now = clock.now()
    kill_and_observe(provider, kube, now)
    found = [
        p["spec"]["containers"][0]["resources"]["limits"]["memory"]
        for p in probe_pods(kube, namespace)
    ]
    provider.close()
    assert found == ([probed] if probed else [])


def test_no_probe_unless_enabled(
    cluster: EmulatorThread, kube: KubeApi, namespace: str, clock: FakeClock
) -> None:
    provider = make_provider(cluster, namespace, clock)
    now = clock.now()
    facts = kill_and_observe(provider, kube, now)
    provider.close()
    assert facts.ooms == 1
    assert probe_pods(kube, namespace) == []
    assert not any(k.startswith("probe") for k in facts.extra)


def test_leftover_probe_pods_of_managed_deployments_are_swept_in_the_first_cycle(
    cluster: EmulatorThread, kube: KubeApi, namespace: str, clock: FakeClock
) -> None:
    foreign = deployment("billing", namespace, labels={"team": "billing"})  # not selected
    seed(
        kube,
        deployment("api", namespace),
        foreign,
        pod("api-probe-1", namespace, {"app": "api", PROBE_LABEL: "api"}),
        pod("billing-probe-1", namespace, {"app": "billing", PROBE_LABEL: "billing"}),
        pod("api-1", namespace, {"app": "api"}),
    )
    now = clock.now()
    off = make_provider(cluster, namespace, clock)
    off.observe(off.targets(), now - 60, now)
    off.close()
    assert len(probe_pods(kube, namespace)) == 2  # probes off: not tuner's to delete
    on = make_provider(cluster, namespace, clock, probe=PROBES_ON)  # a standby starts ...
    assert len(probe_pods(kube, namespace)) == 2  # ... and deletes nothing
    facts = on.observe(on.targets(), now - 60, now)  # the acting one's first cycle sweeps
    names = sorted(p["metadata"]["name"] for p in kube.list(PODS.format(ns=namespace)))
    assert names == ["api-1", "billing-probe-1"]
    assert not any(k.startswith("probe") for f in facts.values() for k in f.extra)
    on.observe(on.targets(), now - 60, now)
    on.close()


def test_closing_the_provider_deletes_its_running_probe(
    cluster: EmulatorThread, kube: KubeApi, namespace: str, clock: FakeClock
) -> None:
    provider = make_provider(cluster, namespace, clock, probe=PROBES_ON)
    now = clock.now()
    kill_and_observe(provider, kube, now)
    assert len(probe_pods(kube, namespace)) == 1
    provider.close()
    assert probe_pods(kube, namespace) == []


def test_a_probe_killed_at_its_own_limit_is_a_lower_bound(
    probing: KubernetesProvider, kube: KubeApi, namespace: str, clock: FakeClock
) -> None:
    start = clock.now()
    kill_and_observe(probing, kube, start)
    [probe] = probe_pods(kube, namespace)
    path = f"{PODS.format(ns=namespace)}/{probe['metadata']['name']}"
    killed = {
        "terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": "2026-11-30T00:00:00Z"}
    }
    kube.patch(
        path,
        {
            "status": {
                "phase": "Failed",
                "containerStatuses": [{"name": "app", "restartCount": 0, "state": killed}],
            }
        },
    )

    clock.advance(60)
    facts = api_facts(probing, start, clock.now())

    assert probe_pods(kube, namespace) == []  # ended, so tuner removed it
    assert facts.ooms == 0  # the probe's kill is not the Deployment's
    assert facts.extra["probe_peak_memory_mb"] == 1024.0
    assert facts.extra["probe_memory_mb"] == 1024.0
    assert "probe_pending" not in facts.extra
    [target] = probing.targets()
    need = probe_need(build_facts(target, facts, {}))
    assert need is not None and need.lower_bound and need.mb == 1024.0


def test_a_knative_service_is_not_probed(
    cluster: EmulatorThread, kube: KubeApi, namespace: str, clock: FakeClock
) -> None:
    provider = make_provider(cluster, namespace, clock, probe=PROBES_ON, kinds=["ksvc"])
    now = clock.now()
    labels = {"serving.knative.dev/service": "resize"}
    seed(
        kube,
        knative_service("resize", namespace),
        pod(
            "resize-1",
            namespace,
            labels,
            oom_at=now - 5,
            container_name="user-container",
            memory="512Mi",
        ),
    )
    with capture_logs() as logs:
        [facts] = provider.observe(provider.targets(), now - 60, now).values()
    provider.close()
    assert facts.ooms == 1
    assert probe_pods(kube, namespace) == []
    assert [e["name"] for e in logs if e["event"] == "probe_unsupported"] == ["resize"]


def memory_series(namespace: str, series: dict[str, list[tuple[float, float]]]) -> str:
    """OpenMetrics text of cAdvisor's working set: pod -> [(time, MiB)], container ``app``."""
    lines = ["# TYPE container_memory_working_set_bytes gauge"]
    for pod_name, samples in series.items():
        labels = f'namespace="{namespace}",pod="{pod_name}",container="app"'
        for when, mib in samples:
            lines.append(
                f"container_memory_working_set_bytes{{{labels}}} {mib * MIB:.0f} {when:.0f}"
            )
    return "\n".join(lines) + "\n# EOF\n"


IMPATIENT_OOM_RULE = """
version: 1
rules:
  - name: oom
    when: ooms > 0.0
    actions:
      - action: more-memory
        margin: 0.1
    severity: critical
"""


def test_the_probes_peak_from_prometheus_sizes_the_deployment_in_one_step(
    cluster: EmulatorThread, kube: KubeApi, namespace: str, tmp_path: Path
) -> None:
    t0 = float(int(time.time()) - 900)  # in the past: Prometheus serves backfilled blocks
    clock = FakeClock(t0)
    probe = probe_pod_name("api", t0)
    series = {
        "api-1": [(t0 - 60 + s, 250.0) for s in range(0, 120, 5)],
        # the probe serves real traffic: up to 700 MB, what the 256 MB pods could not hold
        probe: [(t0 + s, 180.0 + 520.0 * (s == 35)) for s in range(5, 60, 5)],
    }
    with backfilled_prometheus(tmp_path, memory_series(namespace, series)) as url:
        provider = make_provider(
            cluster,
            namespace,
            clock,
            probe=PROBES_ON,
            prometheus_url=url,
            memory_source="prometheus",
        )
        oom_killed_api(kube, namespace, t0 - 10)
        first = api_facts(provider, t0 - 60, t0)
        assert [p["metadata"]["name"] for p in probe_pods(kube, namespace)] == [probe]
        # The Deployment's pod is killed again while the probe serves (a crash loop).
        kube.patch(
            f"{PODS.format(ns=namespace)}/api-1",
            {
                "status": {
                    "containerStatuses": [
                        {
                            "name": "app",
                            "restartCount": 3,
                            "state": {"running": {}},
                            "lastState": {
                                "terminated": {"reason": "OOMKilled", "finishedAt": stamp(t0 + 30)}
                            },
                        }
                    ]
                }
            },
        )
        clock.advance(60)
        second = api_facts(provider, t0, t0 + 60)
        [target] = provider.targets()
        provider.close()

    assert first.extra["probe_pending"] == 1.0
    assert second.ooms == 1
    assert second.peak_memory_mb == pytest.approx(250.0)  # the probe's peak is not the pods'
    assert second.extra["probe_peak_memory_mb"] == pytest.approx(700.0)
    assert second.extra["probe_memory_mb"] == 1024.0
    assert "probe_pending" not in second.extra  # measured more than the killed limit

    bundled, impatient = (
        load_rules([bundled_rules()]),
        load_rules([rules_file(tmp_path, IMPATIENT_OOM_RULE)]),
    )
    # The bundled rule holds back while the probe measures ...
    assert decide(bundled, target, first, t0) is None
    # ... and then sizes from what it measured: 700 MB + 10%, in one step, not x2 blind.
    plan = decide(bundled, target, second, t0 + 60)
    assert plan is not None and plan.change is not None and plan.change.after == 770
    assert "peaked at 700 MB" in plan.summary
    # A rule that does not wait acts at once: blind on the first window, from the probe next.
    blind = decide(impatient, target, first, t0)
    assert blind is not None and blind.change is not None and blind.change.after == 512
    measured = decide(impatient, target, second, t0 + 60)
    assert measured is not None and measured.change is not None and measured.change.after == 770


def rules_file(folder: Path, text: str) -> Path:
    path = folder / "rules" / "oom.yaml"
    path.parent.mkdir()
    path.write_text(text)
    return path


def decide(rules: RuleBase, target: Target, window: WindowFacts, end: float) -> Plan | None:
    """The plan the ``oom`` rule chooses for this window (its first action that can change
    something, as ``choose: first`` does), or None when the rule does not hold."""
    facts = build_facts(target, window, {})
    found, _ = evaluate(rules, target, facts, Streaks(), end)
    oom = rules.by_name("oom")
    if oom is None or "oom" not in [f.rule for f in found]:
        return None
    plans = [action.plan(target.config, target.limits, facts) for action in oom.rule.actions]
    return next((plan for plan in plans if plan.change is not None), plans[0])


@pytest.mark.parametrize(
    ("probe", "field"),
    [
        ("{enabled: true, for: 10s}", "for"),
        ("{enabled: true, for: soon}", "for"),
        ("{factor: 1}", "factor"),
        ("{enabled: yes, max_mb: 0}", "max_mb"),
        ("{enabled: true, every: 5m}", "every"),
    ],
)
def test_probe_settings_mistakes_are_named(probe: str, field: str) -> None:
    text = f"providers:\n  - type: kubernetes\n    probe: {probe}\n"
    with pytest.raises(ConfigError) as caught:
        provider_settings(parse_config(text, "tuner.yaml"))
    message = str(caught.value)
    assert message.startswith("tuner.yaml:3:") and f"probe.{field}" in message


def test_probe_settings_read_durations() -> None:
    text = "providers:\n  - type: kubernetes\n    probe: {enabled: true, for: 15m, factor: 3}\n"
    [(_, settings)] = provider_settings(parse_config(text, "tuner.yaml"))
    assert settings.probe.enabled and settings.probe.for_s == 900.0
    assert settings.probe.memory_mb(512) == 1536
    assert settings.probe.memory_mb(2048) == 4096  # never above max_mb
