"""The daemon on AWS, end to end: moto's server, the bundled rules, mode apply.

An OOMing function gets more memory, a timing-out one smaller batches, and a healthy one
is left alone; every outcome is asserted from the audit store and from the live
configuration that moto reports.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tuner.daemon.config import parse_config
from tuner.daemon.wiring import Tuner, build
from tuner.domain.lifecycle import State
from tuner.domain.model import Knob


def _aws_world() -> ModuleType:
    """The AWS provider tests' world helpers (that folder is not a package)."""
    if "aws_world" not in sys.modules:
        path = Path(__file__).parents[1] / "providers" / "aws" / "aws_world.py"
        spec = importlib.util.spec_from_file_location("aws_world", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["aws_world"] = module
        spec.loader.exec_module(module)
    return sys.modules["aws_world"]


world_helpers = _aws_world()


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and region in the environment, as boto3's chain reads them."""
    world_helpers.use_dummy_credentials(monkeypatch)


@pytest.fixture
def fleet() -> Iterator[Any]:
    """A moto server holding an OOMing, a timing-out and a healthy function with telemetry."""
    with world_helpers.moto_server() as url:
        world_helpers.reset(url)  # moto keeps its state per process, not per server
        world = world_helpers.AwsWorld(endpoint_url=url)
        when = time.time() - 120
        world.create_function("oom-fn", memory_mb=128, timeout_s=30, tags={"tuner": "on"})
        world.put_metrics("oom-fn", when, Invocations=50, Errors=3, Duration=850.0)
        lines = world_helpers.oom_invocations(3, memory_mb=128, duration_ms=850.0)
        lines += world_helpers.ok_invocations([300.0] * 47, memory_mb=128, used_mb=121)
        world.put_log_lines("oom-fn", when, lines)

        world.create_function("slow-fn", memory_mb=256, timeout_s=3, tags={"tuner": "on"})
        world.attach_queue("slow-fn", batch_size=10)
        world.put_metrics("slow-fn", when, Invocations=40, Errors=4, Duration=3000.0)
        lines = world_helpers.timed_out_invocations(4, timeout_s=3, memory_mb=256, used_mb=90)
        lines += world_helpers.ok_invocations([1900.0] * 36, memory_mb=256, used_mb=88)
        world.put_log_lines("slow-fn", when, lines)

        world.create_function("healthy-fn", memory_mb=512, timeout_s=30, tags={"tuner": "on"})
        world.put_metrics("healthy-fn", when, Invocations=100, Errors=0, Duration=210.0)
        world.put_insights("healthy-fn", when, used_memory_max=350.0)
        yield world


def daemon(tmp_path: Path, endpoint_url: str) -> Tuner:
    text = yaml.safe_dump(
        {
            "mode": "apply",
            "interval": "10m",
            "store": "tuner.db",
            "providers": [
                {
                    "type": "aws",
                    "regions": [world_helpers.REGION],
                    "tags": {"tuner": "on"},
                    "endpoint_url": endpoint_url,
                    "rightsizing_every_cycles": world_helpers.QUIET_EVERY,
                    "update_poll_s": 0.05,
                }
            ],
        }
    )
    config_file = tmp_path / "tuner.yaml"
    config_file.write_text(text)
    return build(parse_config(text, str(config_file)))


def test_the_daemon_fixes_oom_and_timeout_and_leaves_the_healthy_function_alone(
    tmp_path: Path, fleet: Any
) -> None:
    world = fleet
    tuner = daemon(tmp_path, world.endpoint_url)
    tuner.start()
    try:
        report = tuner.daemon.run_cycle()
        decisions = tuner.store.decisions(limit=1000)
        again = tuner.daemon.run_cycle()  # same telemetry: the cooldown holds, nothing re-applied
    finally:
        tuner.close()

    assert report.errors == []
    applied = {d.ref.name: d for d in decisions if d.state is State.APPLIED}
    assert set(applied) == {"oom-fn", "slow-fn"}

    oom = applied["oom-fn"]
    assert oom.rule == "oom" and oom.change is not None
    assert oom.change.knob is Knob.MEMORY_MB and oom.change.after > 128
    slow = applied["slow-fn"]
    assert slow.rule == "timeout" and slow.change is not None
    assert slow.change.knob is Knob.BATCH_SIZE and slow.change.after < 10

    lambda_ = world.client("lambda")
    live = lambda_.get_function_configuration(FunctionName="oom-fn")
    assert live["MemorySize"] == oom.change.after
    [mapping] = lambda_.list_event_source_mappings(FunctionName="slow-fn")["EventSourceMappings"]
    assert mapping["BatchSize"] == slow.change.after
    assert lambda_.get_function_configuration(FunctionName="healthy-fn")["MemorySize"] == 512
    assert not [d for d in decisions if d.ref.name == "healthy-fn" and d.change is not None]
    assert again.errors == [] and again.count(State.APPLIED) == 0
