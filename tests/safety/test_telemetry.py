"""Bad telemetry: empty, late, NaN, negative or malformed windows never lead to a change."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest

from tests.fakes import FakeClock, FakeProvider
from tests.safety.harness import WINDOW_S, make_daemon, oom
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.model import (
    DependencyFacts,
    FactValue,
    FunctionConfig,
    FunctionRef,
    Mode,
    Severity,
    Target,
    WindowFacts,
)
from tuner.store.audit import SqliteStore

NAN, INF = math.nan, math.inf


@dataclass
class AsObserved(FakeProvider):
    """Returns each window exactly as set, with its own start and end (late data stays late)."""

    def observe(
        self, targets: Sequence[Target], start: float, end: float
    ) -> Mapping[FunctionRef, WindowFacts]:
        """The stored windows, untouched."""
        return {t.ref: self.windows[t.ref.name] for t in targets if t.ref.name in self.windows}


def _run(window: WindowFacts | None, cycles: int = 3) -> tuple[AsObserved, SqliteStore, list[str]]:
    """Run cycles over one function seeing ``window`` (start and end are offsets from now)."""
    clock = FakeClock()
    provider = AsObserved()
    provider.add("f", FunctionConfig(memory_mb=256, timeout_s=30))
    store = SqliteStore(":memory:")
    daemon = make_daemon([provider], store, clock)
    errors: list[str] = []
    for _ in range(cycles):
        if window is not None:
            now = clock.now()
            provider.windows["f"] = replace(window, start=now + window.start, end=now + window.end)
        errors += daemon.run_cycle().errors
        clock.advance(WINDOW_S)
    return provider, store, errors


REF = FunctionRef("fake", "f")
CURRENT = {"start": -WINDOW_S, "end": 0.0}


def _oom(**overrides: Any) -> WindowFacts:
    return replace(oom(REF), **{**CURRENT, **overrides})


BAD_WINDOWS = {
    "absent": None,
    "no invocations": _oom(invocations=0),
    "invocations unknown": _oom(invocations=None),
    "invocations NaN": _oom(invocations=NAN),
    "invocations negative": _oom(invocations=-100),
    "invocations infinite": _oom(invocations=INF),
    "ooms NaN": _oom(ooms=NAN, errors=NAN),
    "ooms negative": _oom(ooms=-5, errors=-5),
    "ooms infinite": _oom(ooms=INF, errors=0),
    "late: ended an hour ago": _oom(start=-3600.0 - WINDOW_S, end=-3600.0),
    "from the future": _oom(start=3600.0, end=3600.0 + WINDOW_S),
    "ends before it starts": _oom(start=0.0, end=-WINDOW_S),
}
IMPOSSIBLE_WINDOWS = {
    "50 OOMs in 10 invocations": _oom(invocations=10, ooms=50, errors=10),
    "500 errors in 100 invocations": _oom(errors=500),
    "peak memory 1e308 MB": _oom(peak_memory_mb=1e308),
    "p95 of 1e308 ms": _oom(duration_p95_ms=1e308),
    "infinite bounds": _oom(start=-INF, end=INF),
    "a count given as text": _oom(invocations="100"),
    "a fractional count": _oom(ooms=2.5, errors=3),
}
BAD_WINDOWS.update(IMPOSSIBLE_WINDOWS)


@pytest.mark.parametrize("window", BAD_WINDOWS.values(), ids=BAD_WINDOWS.keys())
def test_bad_windows_lead_to_no_change(window: WindowFacts | None) -> None:
    """Over three cycles no change is applied, nothing crashes, no decision is acted on."""
    provider, store, errors = _run(window)
    assert provider.applied == []
    assert errors == []
    assert not [d for d in store.decisions() if d.state is not State.SKIPPED]


@pytest.mark.parametrize("window", IMPOSSIBLE_WINDOWS.values(), ids=IMPOSSIBLE_WINDOWS.keys())
def test_an_impossible_window_is_recorded_as_bad_telemetry(window: WindowFacts) -> None:
    _, store, _ = _run(window, cycles=1)
    [record] = store.decisions()
    assert (record.rule, record.state) == ("telemetry", State.SKIPPED)
    assert record.why.startswith("bad telemetry: ") and "no rule acts" in record.why


def test_the_good_window_does_change_the_function() -> None:
    """The control case: the same window with good numbers makes tuner act."""
    provider, store, errors = _run(_oom())
    assert [name for name, _ in provider.applied] == ["f"]
    assert errors == []


def test_nan_and_infinite_facts_are_stored_as_unknown() -> None:
    """A decision whose facts hold NaN or infinity is recorded, and reads back as null."""
    store = SqliteStore(":memory:")
    facts: dict[str, FactValue] = {
        "invocations": 10.0,
        "extra": {"queue_depth": NAN},
        "peak_memory_mb": INF,
    }
    store.record(
        Decision(
            "d1",
            1.0,
            REF,
            "oom",
            "more-memory",
            Severity.CRITICAL,
            Mode.APPLY,
            State.SKIPPED,
            facts=facts,
        )
    )
    [back] = store.decisions()
    assert back.facts == {
        "invocations": 10.0,
        "extra": {"queue_depth": None},
        "peak_memory_mb": None,
    }


def test_nan_in_provider_specific_facts_does_not_stop_a_needed_change() -> None:
    """OOMs are real; a NaN extra measurement beside them is stored as unknown."""
    provider, store, errors = _run(_oom(extra={"queue_depth": NAN}))
    assert errors == []
    assert [name for name, _ in provider.applied] == ["f"]
    assert store.decisions()[0].facts["extra"] == {"queue_depth": None}


def test_bad_dependency_numbers_lead_to_no_action() -> None:
    """NaN latency and negative errors of a dependency neither crash nor fire a rule."""
    deps = {"db": DependencyFacts("db", calls=10, errors=-10, latency_p95_ms=NAN)}
    window = replace(_oom(), ooms=0, errors=0, dependencies=deps)
    provider, store, errors = _run(window)
    assert errors == [] and provider.applied == []
    assert store.decisions() == []
