"""In-memory ports for unit tests: a provider, a clock and a notifier that record what happens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from tuner.domain.decisions import Decision
from tuner.domain.errors import ProviderError
from tuner.domain.model import Change, FunctionConfig, FunctionRef, Limits, Target, WindowFacts


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self, now: float = 1_000_000.0):
        self.t = now

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class FakeProvider:
    """Functions held in memory; windows are set by the test; faults can be injected."""

    name: str = "fake"
    configs: dict[str, FunctionConfig] = field(default_factory=dict)
    windows: dict[str, WindowFacts] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    applied: list[tuple[str, tuple[Change, ...]]] = field(default_factory=list)
    faults: list[Exception] = field(default_factory=list)
    """Raised, one per call, by the next apply calls."""
    fail_targets: Exception | None = None

    def ref(self, name: str) -> FunctionRef:
        return FunctionRef(self.name, name)

    def add(self, name: str, config: FunctionConfig, **labels: str) -> FunctionRef:
        self.configs[name] = replace(config, revision="1")
        self.labels[name] = labels
        return self.ref(name)

    def targets(self) -> Sequence[Target]:
        if self.fail_targets is not None:
            raise self.fail_targets
        return [
            Target(self.ref(n), c, self.labels.get(n, {}), self.limits)
            for n, c in self.configs.items()
        ]

    def observe(
        self, targets: Sequence[Target], start: float, end: float
    ) -> Mapping[FunctionRef, WindowFacts]:
        return {
            t.ref: replace(self.windows[t.ref.name], ref=t.ref, start=start, end=end)
            for t in targets
            if t.ref.name in self.windows
        }

    def read(self, ref: FunctionRef) -> FunctionConfig:
        if ref.name not in self.configs:
            raise ProviderError(f"no function {ref.name}")
        return self.configs[ref.name]

    def apply(
        self, target: Target, changes: Sequence[Change], *, reason: str = ""
    ) -> FunctionConfig:
        if self.faults:
            raise self.faults.pop(0)
        current = self.configs[target.ref.name]
        if target.config.revision != current.revision:
            from tuner.domain.errors import ConflictError

            raise ConflictError("stale revision")
        new = current.with_changes({c.knob: c.after for c in changes})
        new = replace(new, revision=str(int(current.revision) + 1))
        self.configs[target.ref.name] = new
        self.applied.append((target.ref.name, tuple(changes)))
        return new


class RecordingNotifier:
    """Keeps every batch of decisions it is given."""

    def __init__(self) -> None:
        self.batches: list[list[Decision]] = []

    def notify(self, decisions: Sequence[Decision]) -> None:
        self.batches.append(list(decisions))

    @property
    def sent(self) -> list[Decision]:
        return [d for batch in self.batches for d in batch]
