"""The traffic driver on a real host: Poisson arrivals by default, cron schedules that fire together."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_world import WallClock

from tuner.domain.errors import ConfigError
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.recording import InvocationRecord
from tuner.providers.local.specs import TrafficSpec, load_functions
from tuner.providers.local.traffic import TrafficDriver

NAMES = ("a", "b", "c")


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FunctionHost]:
    """A started host with three functions that return at once."""
    for name in NAMES:
        folder = tmp_path / "functions" / name
        folder.mkdir(parents=True)
        (folder / "function.yaml").write_text("memory_mb: 128\ntimeout_s: 5\n")
        (folder / "handler.py").write_text("def handler(event, context):\n    return event\n")
    running = FunctionHost(tmp_path, tmp_path / "state", WallClock(), max_workers_per_function=4)
    running.start()
    yield running
    running.close()


def drive(host: FunctionHost, traffic: dict[str, TrafficSpec], seconds: float) -> dict[str, list]:
    """Run the driver for ``seconds``; each function's invocations in order of start."""
    driver = TrafficDriver(host, traffic, seed=7)
    driver.start()
    time.sleep(seconds)
    driver.stop()
    records = host.records.invocations(list(NAMES), 0.0, time.time() + 1)
    found: dict[str, list[InvocationRecord]] = {name: [] for name in NAMES}
    for record in sorted(records, key=lambda r: r.start):
        found[record.function].append(record)
    return found


def near(times: list[float], moment: float, within: float) -> bool:
    return any(abs(t - moment) <= within for t in times)


def test_arrivals_are_poisson_and_unrelated_functions_never_start_in_step(
    host: FunctionHost,
) -> None:
    found = drive(host, {"a": TrafficSpec(rate_per_s=25), "b": TrafficSpec(rate_per_s=25)}, 4.0)
    a, b = ([r.start for r in found[n]] for n in ("a", "b"))
    assert 50 <= len(a) <= 160 and 50 <= len(b) <= 160 and not found["c"]
    gaps = [later - earlier for earlier, later in zip(a, a[1:], strict=False)]
    variation = statistics.pstdev(gaps) / statistics.mean(gaps)
    assert 0.6 < variation < 1.6  # exponential gaps: as spread as they are long (even: 0)
    together = sum(near(b, t, 0.001) for t in a) / len(a)
    assert together < 0.25  # one shared tick put every start of a within 1 ms of one of b


def test_functions_on_one_schedule_fire_together_at_its_times(host: FunctionHost) -> None:
    every_second = {"second": "*"}
    traffic = {
        "a": TrafficSpec(schedule=every_second),
        "b": TrafficSpec(schedule=every_second),
        "c": TrafficSpec(rate_per_s=5),
    }
    found = drive(host, traffic, 3.5)
    a, b = ([r.start for r in found[n]] for n in ("a", "b"))
    assert 2 <= len(a) <= 4 and len(b) == len(a)
    for start in a:
        assert start % 1.0 < 0.3  # at a whole second (UTC), give or take the dispatch
        assert near(b, start, 0.15)  # and b with it
    assert found["c"]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("{secnd: '*'}", "unknown schedule field 'secnd'"),
        ("{second: '*/70'}", "not a cron schedule"),
        ("{}", "needs at least one field"),
    ],
)
def test_a_bad_schedule_is_a_located_problem(tmp_path: Path, schedule: str, message: str) -> None:
    folder = tmp_path / "functions" / "a"
    folder.mkdir(parents=True)
    (folder / "handler.py").write_text("def handler(event, context):\n    return event\n")
    (folder / "function.yaml").write_text(f"traffic:\n  schedule: {schedule}\n")
    with pytest.raises(ConfigError) as error:
        load_functions(tmp_path)
    [problem] = error.value.problems
    assert problem.file == str(folder / "function.yaml")
    assert problem.field == "traffic.schedule" and message in problem.message
