"""Injected provider faults: bounded retries with backoff and jitter, failures isolated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from tests.fakes import FakeClock, FakeProvider
from tests.safety.harness import healthy, make_daemon, oom, outcomes
from tuner.domain.errors import ApplyFailedError, ConflictError, ProviderError, ThrottledError
from tuner.domain.lifecycle import State
from tuner.domain.model import Change, FunctionConfig, Target
from tuner.store.audit import SqliteStore


@dataclass
class Sleeps:
    """Records the waits of the retry loop instead of sleeping."""

    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _oom_fleet(*names: str) -> FakeProvider:
    provider = FakeProvider()
    for name in names:
        ref = provider.add(name, FunctionConfig(memory_mb=256, timeout_s=30))
        provider.windows[name] = oom(ref)
    return provider


def _cycle(provider: FakeProvider, sleeps: Sleeps, *others: FakeProvider) -> list[State]:
    store = SqliteStore(":memory:")
    daemon = make_daemon([provider, *others], store, FakeClock(), sleep=sleeps)
    report = daemon.run_cycle()
    return [d.state for d in report.decisions]


def test_throttling_waits_as_long_as_the_provider_asks() -> None:
    """Two throttled attempts with retry_after=2 s, then success: one change, 2 waits of 2 s."""
    provider = _oom_fleet("f")
    provider.faults = [ThrottledError("slow down", retry_after=2.0)] * 2
    sleeps = Sleeps()
    assert _cycle(provider, sleeps) == [State.APPLIED]
    assert sleeps.waits == [2.0, 2.0]
    assert len(provider.applied) == 1


def test_a_long_retry_after_gives_up_for_this_cycle_instead_of_blocking() -> None:
    """A provider asking for 10 minutes is not waited for: the cycle goes on, the change fails."""
    provider = _oom_fleet("f")
    provider.faults = [ThrottledError("slow down", retry_after=600.0)] * 3
    sleeps = Sleeps()
    assert _cycle(provider, sleeps) == [State.FAILED]
    assert sum(sleeps.waits) <= 10.0


def test_retryable_faults_are_retried_a_bounded_number_of_times_with_jittered_backoff() -> None:
    """A timing-out apply is tried 3 times, waiting a random, growing, small delay between."""
    first_waits, second_waits = [], []
    for _ in range(30):
        provider = _oom_fleet("f")
        provider.faults = [ProviderError("read timed out", retryable=True)] * 10
        sleeps = Sleeps()
        assert _cycle(provider, sleeps) == [State.FAILED]
        assert len(provider.faults) == 7, "exactly 3 attempts"
        assert len(sleeps.waits) == 2
        first_waits.append(sleeps.waits[0])
        second_waits.append(sleeps.waits[1])
    assert all(0 <= w <= 0.2 for w in first_waits)
    assert all(0 <= w <= 0.4 for w in second_waits)
    assert len(set(first_waits)) > 20, "jitter: the waits differ from run to run"
    assert max(second_waits) > 0.2, "backoff: the second wait may be longer than the first"


def test_a_permanent_fault_is_not_retried() -> None:
    """A non-retryable error fails the change at once, with the reason recorded."""
    provider = _oom_fleet("f")
    provider.faults = [ProviderError("access denied")] * 3
    sleeps = Sleeps()
    store = SqliteStore(":memory:")
    report = make_daemon([provider], store, FakeClock(), sleep=sleeps).run_cycle()
    assert outcomes(report.decisions) == [("more-memory", State.FAILED)]
    assert "access denied" in report.decisions[0].why
    assert len(provider.faults) == 2 and sleeps.waits == []
    [recorded] = store.decisions()
    assert recorded.state is State.FAILED and store.open_intents() == []


def test_a_conflict_re_reads_and_applies_once() -> None:
    """Someone else changed the function meanwhile: re-read, re-plan from the live value, apply."""
    provider = _oom_fleet("f")
    provider.faults = [ConflictError("stale revision")]
    sleeps = Sleeps()
    assert _cycle(provider, sleeps) == [State.APPLIED]
    assert len(provider.applied) == 1


def test_persisting_conflicts_fail_after_a_bounded_number_of_re_reads() -> None:
    """A function that changes under every attempt is given up on, not fought over forever."""
    provider = _oom_fleet("f")
    provider.faults = [ConflictError("stale revision")] * 10
    assert _cycle(provider, Sleeps()) == [State.FAILED]
    assert len(provider.faults) == 7
    assert provider.applied == []


@dataclass
class HalfApplying(FakeProvider):
    """Takes the first change, then reports that it did not become live (Lambda ``Failed``)."""

    broken: bool = True
    reasons: list[str] = field(default_factory=list)

    def apply(
        self, target: Target, changes: Sequence[Change], *, reason: str = ""
    ) -> FunctionConfig:
        """Apply, and on the first call fail after the change was written."""
        self.reasons.append(reason)
        config = super().apply(target, changes, reason=reason)
        if self.broken:
            self.broken = False
            raise ApplyFailedError("update Failed: InvalidConfiguration")
        return config


def test_a_failed_update_is_rolled_back_to_the_previous_configuration() -> None:
    """An update that failed half-way is undone: the function is back where it was."""
    provider = HalfApplying()
    ref = provider.add("f", FunctionConfig(memory_mb=256, timeout_s=30))
    provider.windows["f"] = oom(ref)
    store = SqliteStore(":memory:")
    report = make_daemon([provider], store, FakeClock(), sleep=Sleeps()).run_cycle()
    assert outcomes(report.decisions) == [("more-memory", State.FAILED)]
    assert "restored" in report.decisions[0].why
    assert provider.configs["f"].memory_mb == 256
    assert [c[0].after for _, c in provider.applied] == [512, 256]
    assert "memory 256 -> 512 MB" in provider.reasons[0]
    assert provider.reasons[1] == "restoring the configuration after a failed update"
    assert store.open_intents() == []


def test_one_failing_provider_does_not_stop_the_others() -> None:
    """Provider a cannot list its functions; provider b still gets its change."""
    broken = _oom_fleet("f")
    broken.fail_targets = ProviderError("endpoint unreachable", retryable=True)
    working = _oom_fleet("g")
    working.name = "other"
    sleeps = Sleeps()
    assert _cycle(broken, sleeps, working) == [State.APPLIED]
    assert [name for name, _ in working.applied] == ["g"]
    assert len(sleeps.waits) == 2


def test_one_failing_function_does_not_stop_the_others() -> None:
    """Each function's apply fails in its own way; the others still get their changes."""
    provider = _oom_fleet("a", "b", "c")
    provider.faults = [RuntimeError("bug in the SDK"), ApplyFailedError("Failed")]
    outcomes_ = _cycle(provider, Sleeps())
    assert sorted(outcomes_) == sorted([State.FAILED, State.FAILED, State.APPLIED])


@pytest.mark.parametrize("bad", [{"invocations": "lots"}, {"duration_p95_ms": "slow"}])
def test_malformed_telemetry_for_one_function_does_not_stop_the_others(
    bad: dict[str, object],
) -> None:
    """A window the provider built wrongly is recorded as bad telemetry; the rest of the cycle runs."""
    provider = _oom_fleet("good")
    ref = provider.add("bad", FunctionConfig(memory_mb=256, timeout_s=30))
    provider.windows["bad"] = healthy(ref, **bad)
    store = SqliteStore(":memory:")
    report = make_daemon([provider], store, FakeClock(), sleep=Sleeps()).run_cycle()
    assert [(d.ref.name, d.state) for d in report.decisions] == [("good", State.APPLIED)]
    [record] = [d for d in store.decisions() if d.ref.name == "bad"]
    assert record.rule == "telemetry" and "is not a number" in record.why


def test_a_throttling_provider_does_not_starve_the_others() -> None:
    """Provider a throttles every change: it gets one try per cycle, b still gets its change,
    and the time spent waiting stays within one retry budget."""
    throttling = _oom_fleet(*(f"f{i}" for i in range(10)))
    throttling.faults = [ThrottledError("Rate exceeded", retry_after=3.0)] * 30
    other = _oom_fleet("g")
    other.name = "other"
    sleeps = Sleeps()
    store = SqliteStore(":memory:")
    daemon = make_daemon([throttling, other], store, FakeClock(), sleep=sleeps)
    report = daemon.run_cycle()
    by_provider = {
        name: sorted(d.state for d in report.decisions if d.ref.provider == name)
        for name in ("fake", "other")
    }
    assert by_provider["other"] == [State.APPLIED]
    assert by_provider["fake"] == sorted([State.FAILED] + [State.SKIPPED] * 9)
    assert sum(sleeps.waits) <= daemon.applier.retry.budget_s
    skipped = [d for d in report.decisions if d.state is State.SKIPPED]
    assert all("throttl" in d.why for d in skipped)
    throttling.faults.clear()
    assert len(daemon.run_cycle().decisions) >= 10, "the next cycle tries them again"
    assert len(throttling.applied) == 10
