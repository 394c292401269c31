"""Memory sized from evidence for one generated function of each allocation shape, for real.

The benchmark's generator (``bench/allocation_shapes.py``) writes six functions that run
out of memory in six ways; each is measured at the host's cap, then deployed below its
need on the local host with the daemon on the bundled rules.  Each must be fixed in one
step, from its probe or its trace (never blind), and never above twice its need.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.allocation_shapes import SHAPES, generate
from bench.bench_sizing import BLIND, measure_needs, tune

pytestmark = pytest.mark.slow


def test_every_shape_is_sized_from_evidence_in_one_step(tmp_path: Path) -> None:
    hogs = generate(random.Random(7), per_shape=1, low_mb=180, high_mb=320)
    assert sorted(h.shape for h in hogs) == sorted(SHAPES)
    needs = measure_needs(hogs, tmp_path)
    assert all(need > 1.2 * hog.memory_mb for hog, need in zip(hogs, needs.values(), strict=True))
    outcomes = tune(hogs, needs, tmp_path, interval_s=4.0, rate_per_s=0.5)
    for o in outcomes:
        assert o.changes == 1, o
        assert o.source != BLIND and o.summary.count(f"from {o.source}") == 1, o
        assert o.ratio is not None and 1.0 < o.ratio <= 2.0, o
        assert o.ooms_after == 0 and o.ok_after > 0, o
