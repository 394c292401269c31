"""tuner never undoes a person's change: conflicts are re-planned, never pushed through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tests.fakes import FakeClock, FakeProvider
from tests.safety.harness import WINDOW_S, healthy, make_daemon, oom
from tuner.domain.errors import ApplyFailedError
from tuner.domain.lifecycle import State
from tuner.domain.model import Change, FunctionConfig, Knob, Target
from tuner.store.audit import SqliteStore


class PersonFirst(FakeProvider):
    """A person sets memory on the function just before tuner's patch arrives."""

    person_sets_mb: int = 2048

    def apply(
        self, target: Target, changes: Sequence[Change], *, reason: str = ""
    ) -> FunctionConfig:
        current = self.configs[target.ref.name]
        if current.revision == "1":  # the person's edit lands first, once
            self.configs[target.ref.name] = replace(
                current, memory_mb=self.person_sets_mb, revision="41"
            )
        return super().apply(target, changes, reason=reason)


def _daemon(provider: FakeProvider) -> tuple[SqliteStore, FakeClock]:
    store, clock = SqliteStore(":memory:"), FakeClock()
    ref = provider.add("f", FunctionConfig(memory_mb=256, timeout_s=30))
    provider.windows["f"] = oom(ref)
    make_daemon([provider], store, clock).run_cycle()
    return store, clock


def test_a_person_raising_memory_meanwhile_supersedes_the_change() -> None:
    """Planned 256 -> 512; a person set 2 GiB meanwhile: nothing is lowered, the decision says why."""
    provider = PersonFirst()
    store, _ = _daemon(provider)
    assert provider.configs["f"].memory_mb == 2048
    assert provider.applied == []
    [decision] = [d for d in store.decisions() if d.action == "more-memory"]
    assert decision.state is State.SUPERSEDED
    assert "changed to 2048 outside tuner" in decision.why
    assert store.open_intents() == []


def test_a_person_raising_memory_too_little_gets_the_rest_planned_from_the_fresh_value() -> None:
    """A person set 300 MB meanwhile: tuner re-plans from 300 and still only moves memory up."""
    provider = PersonFirst()
    provider.person_sets_mb = 300
    store, _ = _daemon(provider)
    [(_, (change,))] = provider.applied
    assert change.before == 300 and change.after > 300
    [decision] = [d for d in store.decisions() if d.action == "more-memory"]
    assert decision.state is State.APPLIED and decision.change == change


class FailsThenPersonEdits(FakeProvider):
    """The update is accepted and then fails; a person edits the function before the restore."""

    def apply(
        self, target: Target, changes: Sequence[Change], *, reason: str = ""
    ) -> FunctionConfig:
        if not self.applied:
            super().apply(target, changes, reason=reason)
            name = target.ref.name
            self.configs[name] = replace(self.configs[name], memory_mb=1024, revision="41")
            raise ApplyFailedError("LastUpdateStatus Failed")
        return super().apply(target, changes, reason=reason)


def test_a_failed_update_is_not_restored_over_a_persons_edit() -> None:
    provider = FailsThenPersonEdits()
    store, _ = _daemon(provider)
    assert provider.configs["f"].memory_mb == 1024
    assert len(provider.applied) == 1, "no restore was applied"
    [decision] = [d for d in store.decisions() if d.action == "more-memory"]
    assert decision.state is State.FAILED and "outside tuner: left as it is" in decision.why


def test_a_rollback_never_undoes_a_persons_later_change() -> None:
    """tuner's change made things worse, but a person moved memory since: judged, not undone."""
    provider = FakeProvider()
    store, clock = _daemon(provider)
    assert provider.configs["f"].memory_mb == 512
    provider.configs["f"] = replace(provider.configs["f"], memory_mb=1024, revision="41")
    clock.advance(WINDOW_S)
    provider.windows["f"] = healthy(provider.ref("f"), errors=60)
    make_daemon([provider], store, clock).run_cycle()
    assert provider.configs["f"].memory_mb == 1024
    [change] = [d for d in store.decisions() if d.action == "more-memory" and d.applied]
    assert change.state is State.WORSE
    assert [d for d in store.decisions() if d.action == "rollback"] == []
    assert change.change is not None and change.change.knob is Knob.MEMORY_MB
