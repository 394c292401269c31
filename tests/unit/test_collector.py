"""The cyclic collector: held while a cycle runs, on again after it, and never turned on by tuner."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tests.fakes import FakeClock
from tests.unit.test_repeated_decisions import daemon, fleet
from tuner.collector import paused
from tuner.store import SqliteStore


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    was_on = gc.isenabled()
    yield
    (gc.enable if was_on else gc.disable)()


def test_a_cycle_runs_with_the_collector_held_and_it_is_on_again_after() -> None:
    gc.enable()
    seen: list[bool] = []
    clock, provider = FakeClock(), fleet("a")
    loop = daemon(provider, SqliteStore(":memory:"), clock)
    targets = provider.targets
    provider.targets = lambda: (seen.append(gc.isenabled()), targets())[1]  # type: ignore[method-assign]
    clock.advance(60)
    loop.run_cycle()
    assert seen == [False] and gc.isenabled()


def test_a_failing_block_turns_it_on_again_and_a_collector_off_stays_off() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    with paused():
        pass
    assert not gc.isenabled()
