"""The safety state in the policy's status: written before a change, restored by a new leader."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kube_emulation import EmulatorThread, WallClock
from kube_objects import deployment, pod, seed
from operator_threads import RESTART_RULES

from operators.cluster_state import ClusterStateMirror, decode_decision, encode_decision
from operators.mirrored_store import MirroredStore, NotLeaderError
from tuner.daemon.applying import Applier
from tuner.daemon.loop import Daemon, DaemonSettings
from tuner.daemon.retrying import Retrier
from tuner.decisions.verifying import VerifyPolicy
from tuner.domain.decisions import Decision, Intent
from tuner.domain.errors import ProviderError
from tuner.domain.lifecycle import IntentState, State, Verdict
from tuner.domain.model import Change, FunctionConfig, FunctionRef, Knob, Mode, Severity, Target
from tuner.engine.rulefiles import parse_rules
from tuner.providers.kubernetes import Settings, build
from tuner.providers.kubernetes.api import KubeApi
from tuner.store.audit import SqliteStore

NAMESPACE = "shop"
POLICY = f"/apis/tuner.dev/v1alpha1/namespaces/{NAMESPACE}/tuningpolicies/fleet"
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/api"
PODS = 5


@pytest.fixture()
def kube(cluster: EmulatorThread) -> Iterator[KubeApi]:
    api = KubeApi(cluster.url)
    seed(
        api,
        {
            "apiVersion": "tuner.dev/v1alpha1",
            "kind": "TuningPolicy",
            "metadata": {"name": "fleet", "namespace": NAMESPACE},
            "spec": {"mode": "apply"},
        },
    )
    yield api
    api.close()


def changes_of(kube: KubeApi) -> dict[str, Any]:
    found: dict[str, Any] = (kube.get(POLICY).get("status") or {}).get("changes") or {}
    return found


def mirrored(kube: KubeApi, path: Path, **options: Any) -> MirroredStore:
    return MirroredStore(SqliteStore(path), ClusterStateMirror(kube, NAMESPACE, "fleet"), **options)


def a_change(when: float, **fields: Any) -> Decision:
    values: dict[str, Any] = {
        "id": "d1",
        "time": when,
        "ref": FunctionRef("kubernetes", "deployment.api", NAMESPACE),
        "rule": "oom",
        "action": "more-memory",
        "severity": Severity.CRITICAL,
        "mode": Mode.APPLY,
        "state": State.APPLYING,
        "verdict": Verdict.APPLY,
        "facts": {"ooms": 2.0, "oom_rate": 0.4, "dependencies": {"db": {"calls": 3.0}}},
        "change": Change(Knob.MEMORY_MB, 256, 512),
        "summary": "memory_mb 256 -> 512",
    }
    values.update(fields)
    return Decision(**values)


def test_a_decision_survives_the_trip_through_the_status_text() -> None:
    decision = a_change(
        1.5e9, state=State.APPLIED, judged_windows=2, channels=("team",), undoes="x"
    )
    assert decode_decision(encode_decision(decision)) == decision
    infinite = a_change(1.5e9, facts={"p95": float("inf")})
    assert decode_decision(encode_decision(infinite)).facts == {"p95": None}


def test_the_intent_is_in_the_status_before_the_change_and_settled_after(
    kube: KubeApi, tmp_path: Path
) -> None:
    store = mirrored(kube, tmp_path / "a.db")
    decision = a_change(time.time())
    intent = Intent("i1", "d1", decision.ref, (decision.change,), decision.time)  # type: ignore[arg-type]

    store.begin_intent(intent, decision)
    written = changes_of(kube)["d1"]
    assert (written["state"], written["intent"]["state"]) == ("applying", "open")
    assert (written["knob"], written["before"], written["after"]) == ("memory_mb", 256, 512)
    assert written["rule"] == "oom" and written["time"].endswith("Z")

    applied = decision.advance(State.APPLIED)
    store.finish_intent("i1", IntentState.DONE, applied)
    store.record(replace(applied, judged_windows=2))
    settled = changes_of(kube)["d1"]
    assert settled["state"] == "applied"
    assert (settled["intent"]["state"], settled["windows"]) == ("done", 2)

    store.record(replace(applied, judged_windows=3).advance(State.IMPROVED, "oom_rate 0.4 -> 0"))
    assert changes_of(kube)["d1"]["state"] == "improved"
    store.record(a_change(time.time(), id="other", state=State.SKIPPED, change=None))
    assert set(changes_of(kube)) == {"d1"}, "only changes go to the cluster"


class _NeverApplied:
    """A provider whose functions must not change: the test fails if one is applied."""

    name = "kubernetes"

    def apply(self, target: Target, changes: Any, *, reason: str = "") -> FunctionConfig:
        raise AssertionError("applied a change the cluster did not record")


def test_no_change_is_begun_that_the_cluster_cannot_record(
    cluster: EmulatorThread, kube: KubeApi, tmp_path: Path
) -> None:
    decision = a_change(time.time())
    intent = Intent("i1", "d1", decision.ref, (decision.change,), decision.time)  # type: ignore[arg-type]
    follower = mirrored(kube, tmp_path / "b.db", may_write=lambda: False)
    with pytest.raises(NotLeaderError):
        follower.begin_intent(intent, decision)
    cluster.call(lambda: cluster.emulator.forbidden.add("tuner.dev/v1alpha1/tuningpolicies"))
    leader = mirrored(kube, tmp_path / "a.db")
    with pytest.raises(ProviderError, match="403"):
        leader.begin_intent(intent, decision)  # the store raises; the applier decides
    applier = Applier(leader, WallClock(), Retrier(1, 1.0), lambda d, t: None)
    planned = decision.replaced(id="d2", state=State.PLANNED)
    target = Target(decision.ref, FunctionConfig(memory_mb=256))
    failed, _ = applier.apply(_NeverApplied(), target, planned)  # type: ignore[arg-type]
    assert failed.state is State.FAILED
    assert "the cluster did not record the intent" in failed.why
    assert leader.get("d2") == failed
    assert [i.decision_id for i in leader.open_intents()] == ["d1"]  # only the bare store call's
    assert [d.id for d in leader.applied_since(0.0)] == ["d1"], "d2, never made, holds no cooldown"


def test_a_new_leader_restores_cooldowns_verifications_and_open_intents(
    kube: KubeApi, tmp_path: Path
) -> None:
    old = mirrored(kube, tmp_path / "old.db")
    now = time.time()
    judged = a_change(now - 60, id="judged", state=State.APPLIED, judged_windows=1)
    open_one = a_change(now - 5, id="open", change=Change(Knob.MEMORY_MB, 512, 1024))
    for decision, intent_id in ((judged, "i-judged"), (open_one, "i-open")):
        assert decision.change is not None
        applying = replace(decision, state=State.APPLYING)
        old.begin_intent(
            Intent(intent_id, decision.id, decision.ref, (decision.change,), decision.time),
            applying,
        )
    old.finish_intent("i-judged", IntentState.DONE, judged)

    new = mirrored(kube, tmp_path / "new.db")
    assert new.restore() == 2
    assert [d.id for d in new.pending_verification()] == ["judged"]
    cooling = {d.id: d.state for d in new.applied_since(now - 3600)}
    assert cooling == {"judged": State.APPLIED, "open": State.APPLYING}, "both hold cooldowns"
    assert [(i.id, i.decision_id) for i in new.open_intents()] == [("i-open", "open")]
    assert new.get("judged") == judged, "facts and all come back for the verdict"
    assert new.pending_verification()[0].judged_windows == 1
    assert new.restore() == 2, "restoring twice changes nothing"
    assert len(new.open_intents()) == 1


def test_settled_changes_leave_the_status_after_the_history_period(
    kube: KubeApi, tmp_path: Path
) -> None:
    now = time.time()
    store = mirrored(kube, tmp_path / "a.db", keep_s=3600)
    old = a_change(now - 7200, id="old", state=State.IMPROVED)
    recent = a_change(now, id="recent")
    for decision in (old, recent):
        assert decision.change is not None
        store.begin_intent(
            Intent(
                f"i-{decision.id}", decision.id, decision.ref, (decision.change,), decision.time
            ),
            decision,
        )
    store.finish_intent("i-old", IntentState.DONE, old)
    assert set(changes_of(kube)) == {"old", "recent"}
    store.finish_intent("i-recent", IntentState.DONE, recent.advance(State.FAILED, "refused"))
    assert set(changes_of(kube)) == {"recent"}


def make_daemon(cluster: EmulatorThread, store: MirroredStore) -> Daemon:
    settings = Settings(namespace=NAMESPACE, api_url=cluster.url, rollout_timeout_s=5)
    provider = build(settings, clock=WallClock())
    provider.start()
    return Daemon(
        providers=[provider],
        rules=parse_rules(RESTART_RULES, "rules.yaml"),
        store=store,
        settings=DaemonSettings(
            mode=Mode.APPLY, window_s=2.0, verify_policy=VerifyPolicy(windows=1)
        ),
    )


def memory(kube: KubeApi) -> str:
    live = kube.get(DEPLOYMENT)
    return str(live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])


def test_the_next_leader_judges_the_change_without_changing_again(
    cluster: EmulatorThread, kube: KubeApi, tmp_path: Path
) -> None:
    seed(
        kube,
        deployment("api", NAMESPACE, memory="256Mi"),
        *[pod(f"api-{i}", NAMESPACE, {"app": "api"}, restarts=1) for i in range(PODS)],
    )
    first = make_daemon(cluster, mirrored(kube, tmp_path / "first.db"))
    [change] = first.run_cycle().decisions
    assert change.state is State.APPLIED and memory(kube) == "512Mi"
    entry = changes_of(kube)[change.id]
    assert (entry["state"], entry["intent"]["state"]) == ("applied", "done")
    patches = [r for r in cluster.requests() if r.method == "PATCH"]
    status_first = next(i for i, r in enumerate(patches) if r.subresource == "status")
    workload_first = next(i for i, r in enumerate(patches) if r.resource == "apps/v1/deployments")
    assert status_first < workload_first, "the intent is in the cluster before the change"

    second_store = mirrored(kube, tmp_path / "second.db")
    second = make_daemon(cluster, second_store)
    assert second_store.restore() == 1
    time.sleep(2.2)  # a whole window after the change
    report = second.run_cycle()

    assert memory(kube) == "256Mi", "the change that did not help was rolled back"
    [held] = report.decisions
    assert (held.action, held.state) == ("more-memory", State.SKIPPED) and "cooldown" in held.why
    assert [(d.id, d.state) for d in report.verified] == [(change.id, State.ROLLED_BACK)]
    workload_patches = [
        r for r in cluster.requests() if r.method == "PATCH" and r.resource == "apps/v1/deployments"
    ]
    assert len(workload_patches) == 2, "one change, one rollback, nothing more"
    judged = changes_of(kube)[change.id]
    assert judged["state"] == "rolled-back"
    assert "did not help" in json.loads(judged["decision"])["reason"]
    assert json.loads(judged["decision"])["state"] == "rolled-back"


def test_an_update_the_cluster_missed_is_written_with_the_next_one(
    cluster: EmulatorThread, kube: KubeApi, tmp_path: Path
) -> None:
    store = mirrored(kube, tmp_path / "a.db")
    decision = a_change(time.time())
    assert decision.change is not None
    store.begin_intent(
        Intent("i1", "d1", decision.ref, (decision.change,), decision.time), decision
    )
    policies = "tuner.dev/v1alpha1/tuningpolicies"
    cluster.call(lambda: cluster.emulator.forbidden.add(policies))
    applied = decision.advance(State.APPLIED)
    store.finish_intent(
        "i1", IntentState.DONE, applied
    )  # the change is live: a lost write never undoes it
    cluster.call(lambda: cluster.emulator.forbidden.discard(policies))
    assert changes_of(kube)["d1"]["intent"]["state"] == "open"

    assert store.restore() == 1, "a leader again: the cluster still shows the intent open"
    assert store.open_intents() == [], "the local store knows better and keeps its record"
    store.record(replace(applied, judged_windows=1))
    written = changes_of(kube)["d1"]
    assert (written["intent"]["state"], written["state"], written["windows"]) == (
        "done",
        "applied",
        1,
    )
