"""The cyclic collector's young generation is sized to the fleet, never lowered, never switched on."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tuner.daemon.collector import YOUNG_PER_FUNCTION, YOUNG_THRESHOLD, tune_collector


@pytest.fixture(autouse=True)
def _restore_threshold() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_a_small_fleet_gets_the_floor_and_a_large_one_grows_with_it() -> None:
    gc.set_threshold(700, 10, 10)
    tune_collector(100)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    tune_collector(100_000)
    assert gc.get_threshold() == (YOUNG_PER_FUNCTION * 100_000, 10, 10)


def test_a_fleet_that_shrinks_never_lowers_it() -> None:
    gc.set_threshold(YOUNG_PER_FUNCTION * 50_000, 10, 10)
    tune_collector(10)
    assert gc.get_threshold()[0] == YOUNG_PER_FUNCTION * 50_000


def test_a_collector_someone_switched_off_stays_off() -> None:
    gc.set_threshold(0, 10, 10)
    tune_collector(100_000)
    assert gc.get_threshold()[0] == 0
