"""SimProvider: a simulated fleet of Lambda-like functions behind tuner's Provider port.

Deterministic from its seed: the traffic of a slot depends only on the seed and the slot's
bounds, never on what a strategy did, so strategies run on separate providers with the
same seed see the same invocations.  It hears of an invocation killed for memory at once
(:meth:`SimProvider.urgent_since`), as a host that runs the functions itself does.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace

from tuner.domain.errors import ConflictError, ProviderError
from tuner.domain.model import (
    Change,
    FunctionConfig,
    FunctionRef,
    Knob,
    Lasting,
    Limits,
    Target,
    WindowFacts,
)
from tuner.domain.ports import Clock
from tuner.providers.sim.lookback import Lookback
from tuner.providers.sim.merging import merge_facts, merge_outcomes
from tuner.providers.sim.scoring import Ledger
from tuner.providers.sim.slots import DRAWS, PART_DRAWS, Part
from tuner.providers.sim.traffic import Traffic, Trial
from tuner.providers.sim.windows import DependencyState, Evidence, Outcome, simulate
from tuner.providers.sim.workloads import MAX_MEMORY_MB, MIN_MEMORY_MB, Workload

_KNOBS = frozenset({Knob.MEMORY_MB, Knob.TIMEOUT_S, Knob.MEMORY_TRIAL_MB, Knob.SPLIT_ABOVE_KB})
TRIAL_SHARE = 0.1
"""Share of a function's traffic that runs at a size tried."""
TRIAL_INVOCATIONS = 20
"""Invocations a trial runs when the change does not say how many."""
SIM_LIMITS = Limits(memory_min_mb=MIN_MEMORY_MB, memory_max_mb=MAX_MEMORY_MB, memory_step_mb=1)
"""Lambda's limits: 128 MB to 10,240 MB in 1 MB steps, up to 900 s, CPU with memory."""


class VirtualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 0.0):
        self.t = start

    def now(self) -> float:
        """The virtual time in seconds."""
        return self.t

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.t += seconds


class SimProvider:
    """Lists, observes and reconfigures a simulated fleet; scores what happened in a ledger.

    The ledger counts each window of real traffic once, however often it is observed.
    """

    def __init__(
        self,
        workloads: Sequence[Workload],
        clock: Clock,
        *,
        name: str = "sim",
        seed: int = 0,
        evidence: Evidence | None = None,
        lookback_days: int = 14,
        history_days: float = 14.0,
        trial_share: float = TRIAL_SHARE,
    ):
        self.name = name
        self.clock = clock
        self.seed = seed
        self.workloads = list(workloads)
        self.evidence = evidence or Evidence()
        self.ledger = Ledger(self.workloads)
        self._index = {FunctionRef(name, w.name): i for i, w in enumerate(self.workloads)}
        self._configs = [
            FunctionConfig(
                memory_mb=w.memory_mb,
                timeout_s=w.timeout_s,
                memory_trial_mb=0,
                split_above_kb=0 if w.splits else None,
                revision="1",
            )
            for w in self.workloads
        ]
        self._targets = [self._target(i) for i in range(len(self.workloads))]
        self.lookback = Lookback(len(self.workloads), lookback_days, history_days)
        self._deployed = bytearray(len(self.workloads))
        self.traffic = Traffic(
            self.workloads, seed, self.evidence, self.ledger, clock.now(), trial_share
        )
        self._changed_at = [-math.inf] * len(self.workloads)
        """When each function's configuration last changed (a change or a deploy)."""
        self._last: dict[FunctionRef, WindowFacts] = {}
        self._seen: tuple[float, float] | None = None
        """The window last observed for the whole fleet, while nothing changed since."""
        self.last_outcomes: list[Outcome | None] = [None] * len(self.workloads)
        """The true outcome of each function's latest window (for strategies that read usage)."""
        if history_days > 0:
            self._remember(history_days * 86_400.0)

    def _remember(self, seconds: float) -> None:
        """Fill the lookback with the history of the fleet at its starting configuration.

        The fleet has been running before the simulation starts: its payloads and peaks
        are in the provider's history, as CloudWatch or a metrics store would hold them.
        Nothing of it counts in the ledger.
        """
        rng = random.Random(f"tuner-sim-history:{self.seed}")
        more = random.Random(f"tuner-sim-history-parts:{self.seed}")
        history = Part(-seconds, 0.0, -seconds, 0.0)
        for i, w in enumerate(self.workloads):
            config = self._configs[i]
            draws = [rng.random() for _ in range(DRAWS)] + [
                more.random() for _ in range(PART_DRAWS)
            ]
            facts, _ = simulate(
                w,
                self._targets[i].ref,
                config.memory_mb,
                config.timeout_s or 900.0,
                history,
                draws,
                DependencyState(),
                self.evidence,
            )
            self.lookback.remember(i, facts)

    def _target(self, i: int) -> Target:
        w = self.workloads[i]
        return Target(
            ref=FunctionRef(self.name, w.name),
            config=self._configs[i],
            labels={"team": f"team-{i % 12}"},
            limits=SIM_LIMITS,
        )

    # ------------------------------------------------------------ the Provider port

    def targets(self) -> list[Target]:
        """Every simulated function with its current configuration."""
        self._deploy(self.clock.now())
        return list(self._targets)

    def observe(
        self, targets: Sequence[Target], start: float, end: float
    ) -> Mapping[FunctionRef, WindowFacts]:
        """Facts over ``[start, end)`` of the invocations that ran at each target's configuration.

        Traffic is simulated once, as time passes, whatever windows are asked for; a window
        reports only what ran since the function's configuration last changed (a change,
        a deploy), as a host that records each invocation's revision does.
        """
        if self._seen == (start, end):  # asked again, nothing changed: answered from memory
            return {t.ref: self._last[t.ref] for t in targets if t.ref in self._last}
        self.lookback.roll(end)
        self._deploy(end)
        self.traffic.keep_s = max(self.traffic.keep_s, end - start)
        out: dict[FunctionRef, WindowFacts] = {}
        for t in targets:
            i = self._index.get(t.ref)
            if i is None:
                continue
            self._advance(i, end)
            since = max(start, self._changed_at[i])
            mine = self.traffic.within(i, since, end)
            w = self.workloads[i].version_at(since)
            if not mine:
                window = WindowFacts(ref=t.ref, start=start, end=end, invocations=0)
                self.last_outcomes[i] = None
            else:
                window = merge_facts([r.facts for r in mine])
                self.last_outcomes[i] = merge_outcomes([r.outcome for r in mine])
                window = self._measured(i, window)
            out[t.ref] = self._last[t.ref] = self.lookback.add(i, w, window)
        self._seen = (start, end) if len(out) == len(self.workloads) else None
        return out

    def last_window(self) -> Mapping[FunctionRef, WindowFacts]:
        """The facts of the latest window observed, per function."""
        return self._last

    def read(self, ref: FunctionRef) -> FunctionConfig:
        """The live configuration of one function."""
        return self._configs[self._position(ref)]

    def apply(
        self, target: Target, changes: Sequence[Change], *, reason: str = ""
    ) -> FunctionConfig:
        """Apply memory or timeout changes at once; a stale revision is a conflict."""
        i = self._position(target.ref)
        config = self._configs[i]
        if target.config.revision and target.config.revision != config.revision:
            raise ConflictError(f"{target.ref.key} changed since it was read")
        values: dict[Knob, float | int] = {}
        for change in changes:
            if change.knob not in _KNOBS or config.get(change.knob) is None:
                raise ProviderError(
                    f"the simulator has no {change.knob.value} setting for {target.ref.key}"
                )
            values[change.knob] = change.after
        new = config.with_changes(values)
        if new == config and new.memory_trial_mb == config.memory_trial_mb:
            return config
        now = self.clock.now()
        self._seen = None
        self._advance(i, now)  # what ran before the change ran at the old configuration
        config = self._configs[i]
        new = replace(
            config.with_changes(values),
            memory_mb=int(new.memory_mb),
            revision=str(int(config.revision) + 1),
        )
        if new.memory_mb != config.memory_mb or new.timeout_s != config.timeout_s:
            self.ledger.change(i, config.memory_mb, new.memory_mb, now)
            self._changed_at[i] = max(self._changed_at[i], now)
        if new.split_above_kb != config.split_above_kb:
            self.workloads[i] = w = self.workloads[i].split_at(new.split_above_kb or 0)
            self.ledger.split(i, new.memory_mb, w.version_at(now).need_mb, now)
            self._changed_at[i] = max(self._changed_at[i], now)
        trial = next((c for c in changes if c.knob is Knob.MEMORY_TRIAL_MB), None)
        if trial is not None:
            self._try(i, int(trial.after), trial.lasting)
            new = replace(new, memory_trial_mb=int(trial.after))
        self._configs[i] = new
        self._targets[i] = self._target(i)
        return new

    def set_memory(self, ref: FunctionRef, memory_mb: int) -> None:
        """Set memory directly (for strategies that do not go through tuner's loop)."""
        i = self._position(ref)
        change = Change(Knob.MEMORY_MB, self._configs[i].memory_mb, memory_mb)
        self.apply(self._targets[i], [change])

    # ------------------------------------------------------------ urgent news

    def urgent_since(self, since: float) -> dict[FunctionRef, float]:
        """Functions with an invocation killed for memory since ``since`` (until now), and when."""
        return self.first_news(since, self.clock.now())

    def first_news(self, since: float, until: float) -> dict[FunctionRef, float]:
        """Functions whose invocations run out of memory in ``[since, until)`` at today's sizes.

        Each with when its first one does.  The simulation knows its traffic ahead: a
        driver on a virtual clock asks when news comes instead of waiting for it.
        """
        memory = [c.memory_mb for c in self._configs]
        return self.traffic.first_news(memory, [t.ref for t in self._targets], since, until)

    # ------------------------------------------------------------ internals

    def _position(self, ref: FunctionRef) -> int:
        try:
            return self._index[ref]
        except KeyError:
            raise ProviderError(f"no such simulated function: {ref.key}") from None

    def _advance(self, i: int, until: float) -> None:
        """Simulate function ``i``'s traffic up to ``until``; a trial that ended ends here too."""
        if self.traffic.advance(i, until, self._configs[i], self._targets[i].ref):
            self._configs[i] = replace(self._configs[i], memory_trial_mb=0)
            self._targets[i] = self._target(i)

    def _try(self, i: int, memory_mb: int, lasting: Lasting | None) -> None:
        """Run ``memory_mb`` on a share of function ``i``'s traffic (0: end a trial)."""
        if memory_mb <= 0:
            self.traffic.trials.pop(i, None)
            return
        left = lasting.invocations if lasting and lasting.invocations else TRIAL_INVOCATIONS
        self.traffic.trials[i] = Trial(memory_mb, left)

    def _measured(self, i: int, window: WindowFacts) -> WindowFacts:
        """The window with what an invocation cost at each size measured (the cheapest)."""
        found = self.traffic.sizes.extra(i, self._configs[i].memory_mb)
        return replace(window, extra={**window.extra, **found}) if found else window

    def _deploy(self, end: float) -> None:
        """Deploy the new versions due before ``end``: a new revision, a new history."""
        for i, w in enumerate(self.workloads):
            if w.deploy_at <= end and not self._deployed[i]:
                self._advance(i, w.deploy_at)  # the old version ran until then
                self._deployed[i] = 1
                self._seen = None
                self._changed_at[i] = max(self._changed_at[i], w.deploy_at)
                config = self._configs[i]
                self._configs[i] = replace(config, revision=str(int(config.revision) + 1))
                self._targets[i] = self._target(i)
                self.lookback.forget(i)
                self.traffic.sizes.forget(i)
