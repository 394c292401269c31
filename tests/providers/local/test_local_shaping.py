"""Shape changes on a real local host: a fused pair, its rollback, a far dependency's replica."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_world import WallClock, traced_host, write_handlers

from tuner.domain.model import Change, FunctionConfig, Knob, Target
from tuner.providers.local.fusing import FUSIONS_FILE
from tuner.providers.local.provider import LocalProvider
from tuner.providers.local.tracing_specs import TracingSpec

PAIR = {
    # the caller sums what its private callee answers, and says where each call ran
    "caller": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "import os\n\n"
        "def handler(event, context):\n"
        "    answers = [context.invoke('callee', {'value': v}) for v in event['values']]\n"
        "    try:\n"
        "        context.invoke('callee', {'value': 'not a number'})\n"
        "        failed = ''\n"
        "    except Exception as error:\n"
        "        failed = type(error).__name__\n"
        "    return {\n"
        "        'answers': [a['answer'] for a in answers],\n"
        "        'names': sorted({a['name'] for a in answers}),\n"
        "        'colours': sorted({a['colour'] for a in answers}),\n"
        "        'in_caller': sorted({a['pid'] == os.getpid() for a in answers}),\n"
        "        'failed': failed,\n"
        "    }\n",
    ),
    # its own code, environment, name and failures: the same fused or not
    "callee": (
        "memory_mb: 128\ntimeout_s: 2\nenvironment: {COLOUR: blue}\n",
        "import os\n\n"
        "def square(value):\n"
        "    return value * value + 1\n\n"
        "def handler(event, context):\n"
        "    return {'answer': square(event['value']), 'name': context.function_name,\n"
        "            'colour': os.environ['COLOUR'], 'pid': os.getpid()}\n",
    ),
    "reader": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "def handler(event, context):\n"
        "    return context.dependency('far-db').get('/rows/' + event['key'])\n",
    ),
}
DEPENDENCIES = """\
far-db:
  latency_ms: 5
  distance_ms: 120
  replicas: [near-db]
near-db:
  latency_ms: 5
  distance_ms: 1
"""
EVENTS = [{"values": [1, 2, 3]}, {"values": [7]}, {"values": []}]


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[LocalProvider]:
    """A started provider over the pair and the reader, tracing every invocation."""
    app = write_handlers(tmp_path / "app", PAIR)
    (app / "dependencies.yaml").write_text(DEPENDENCIES)
    host = traced_host(app, tmp_path / "state", TracingSpec(mode="full"))
    running = LocalProvider(host, WallClock(), http_port=None, traffic=False)
    running.start()
    yield running
    running.close()


def target(provider: LocalProvider, name: str) -> Target:
    return next(t for t in provider.targets() if t.ref.name == name)


def results(provider: LocalProvider) -> list[object]:
    outcomes = [provider.host.invoke("caller", event) for event in EVENTS]
    assert [o.outcome for o in outcomes] == ["ok"] * len(EVENTS)
    return [o.result for o in outcomes]


def observed(provider: LocalProvider, since: float) -> dict[str, dict[str, float]]:
    """Each function's extra facts since ``since`` (the provider learns who calls whom)."""
    windows = provider.observe(provider.targets(), since, time.time() + 1)
    return {ref.name: dict(window.extra) for ref, window in windows.items()}


def fuse(provider: LocalProvider) -> FunctionConfig:
    return provider.apply(target(provider, "callee"), [Change(Knob.FUSED, 0, 1)])


def without_pid_flags(found: list[object]) -> list[object]:
    return [{k: v for k, v in r.items() if k != "in_caller"} for r in found]  # type: ignore[attr-defined]


def test_traces_measure_the_callers_wait_beyond_the_callees_own_time(
    provider: LocalProvider,
) -> None:
    results(provider)  # warm workers: no start in the hops measured
    since = time.time()
    results(provider)

    callee = observed(provider, since)["callee"]

    assert callee["callers"] == 1.0 and callee["caller_share"] == 1.0
    assert callee["calls_per_caller_invocation"] == pytest.approx(7 / 3)  # the failing call too
    assert callee["caller_memory_mb"] == 128.0
    assert callee["invoke_overhead_ms"] > 0.0 and callee["own_duration_ms"] > 0.0
    hop, own = callee["invoke_overhead_ms"], callee["own_duration_ms"]
    assert callee["invoke_overhead_share"] == pytest.approx(hop / (hop + own))


def test_a_fused_pair_gives_the_same_results_as_unfused(provider: LocalProvider) -> None:
    since = time.time()
    separate = results(provider)
    observed(provider, since)

    deployed = fuse(provider)
    fused = results(provider)

    assert deployed.fused == 1
    assert provider.host.fusions.caller_of("callee") == "caller"
    assert without_pid_flags(fused) == without_pid_flags(separate)
    assert separate[0] == {
        "answers": [2, 5, 10],
        "names": ["callee"],
        "colours": ["blue"],
        "in_caller": [False],
        "failed": "InvocationError",
    }
    assert [r["in_caller"] for r in fused] == [[True], [True], []]  # type: ignore[index]
    # a fused call is still an invocation of the callee, at its new revision
    calls = provider.host.records.invocations(["callee"], since, time.time() + 1)
    assert {c.revision for c in calls} == {1, 2}
    assert sum(c.outcome == "error" for c in calls if c.revision == 2) == len(EVENTS)


def test_a_rolled_back_fusion_restores_the_separate_functions_exactly(
    provider: LocalProvider, tmp_path: Path
) -> None:
    since = time.time()
    separate = results(provider)
    before = provider.read(target(provider, "callee").ref)
    observed(provider, since)
    fuse(provider)
    results(provider)

    restored = provider.apply(target(provider, "callee"), [Change(Knob.FUSED, 1, 0)])

    assert restored == before  # the revision aside, every setting as it was
    assert restored.revision == "3"
    assert provider.host.fusions.caller_of("callee") is None
    assert json.loads((tmp_path / "state" / FUSIONS_FILE).read_text()) == {}
    assert results(provider) == separate  # in its own worker again: in_caller is False
    later = time.time()
    results(provider)
    assert observed(provider, later)["callee"]["callers"] == 1.0


def test_a_function_with_no_traced_caller_is_not_fused(provider: LocalProvider) -> None:
    with pytest.raises(Exception, match="0 callers"):
        fuse(provider)

    assert provider.host.fusions.caller_of("callee") is None
    assert provider.read(target(provider, "callee").ref).fused == 0


def test_a_far_dependency_is_read_from_its_near_replica_and_back(provider: LocalProvider) -> None:
    def read() -> tuple[set[object], list[float]]:
        """Who answered three reads, and the latencies recorded for them."""
        since = time.time()
        answers = [provider.host.invoke("reader", {"key": key}).result for key in "abc"]
        calls = provider.host.records.dependency_calls(["reader"], since, time.time() + 1)
        assert {c.name for c in calls} == {"far-db"}  # recorded under the name it calls
        assert [a["path"] for a in answers] == ["/rows/a", "/rows/b", "/rows/c"]  # type: ignore[index]
        return {a["dependency"] for a in answers}, [c.latency_ms for c in calls]  # type: ignore[index]

    since = time.time()
    far = read()
    facts = observed(provider, since)["reader"]
    switched = provider.apply(target(provider, "reader"), [Change(Knob.NEAR_REPLICA, 0, 1)])
    near = read()
    provider.apply(target(provider, "reader"), [Change(Knob.NEAR_REPLICA, 1, 0)])
    back = read()

    assert facts["dependency_distance_ms"] == 120.0
    assert facts["replica_distance_ms"] == 1.0
    assert 0.5 < facts["distance_share"] <= 1.0
    assert switched.near_replica == 1
    assert far[0] == back[0] == {"far-db"} and near[0] == {"near-db"}
    assert min(far[1]) >= 120 and min(back[1]) >= 120
    assert max(near[1]) < 120
