"""The simulated provider's own history: per function and day, of the version it runs now.

Like CloudWatch or a metrics store, the provider keeps the highest peak, the largest
payload and the fastest mean duration of each day, for ``days`` days, and adds what they
say over the lookback to each window's facts.  A deploy starts a function's history anew:
what the previous version needed and how fast it ran say nothing of the new one (the
payloads callers send stay in it).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import replace

from tuner.domain.model import WindowFacts
from tuner.domain.times import DAY_S
from tuner.providers.sim.workloads import Workload

MODEL_FACTS = frozenset({"memory_mb_per_payload_kb", "memory_growth_mb_per_invocation"})
"""Facts that say a window held enough survivors to model how memory grows."""


class Lookback:
    """Peaks, payloads and fastest means per function and day, over ``days`` days."""

    def __init__(self, functions: int, days: int, history_days: float):
        self.days = days
        size = functions * days
        self._peaks = array("d", bytes(8 * size))
        self._payloads = array("d", bytes(8 * size))
        self._fastest = array("d", [math.inf]) * size
        """The lowest mean duration of a window, per function and day (inf: none)."""
        self._day = 0
        self._since = [-math.ceil(history_days)] * functions
        """The first day of each function's history (its version's, after a deploy)."""
        self._modelled = bytearray(functions)
        """1 where the lookback holds enough survivors to model memory (payload or leak)."""

    def remember(self, i: int, facts: WindowFacts) -> None:
        """Put the history before the start (one window of it) in yesterday's slot.

        It ages out of the lookback in time, as the days before the simulation would.
        """
        slot = i * self.days + self.days - 1
        self._peaks[slot] = facts.peak_memory_mb or 0.0
        self._payloads[slot] = facts.extra.get("payload_kb_max", 0.0)
        self._fastest[slot] = facts.extra.get("duration_avg_ms", math.inf)
        if MODEL_FACTS & facts.extra.keys():
            self._modelled[i] = 1

    def roll(self, end: float) -> None:
        """Start the days up to ``end``: each new day's slot is emptied."""
        day = int(end // DAY_S)
        while self._day < day:
            self._day += 1
            slot = self._day % self.days
            for base in range(0, len(self._peaks), self.days):
                self._peaks[base + slot] = 0.0
                self._payloads[base + slot] = 0.0
                self._fastest[base + slot] = math.inf

    def forget(self, i: int) -> None:
        """A new version of function ``i`` went live: its memory and speed start anew today.

        The payloads stay: callers send what they sent before, whatever the version.
        """
        base = i * self.days
        for slot in range(base, base + self.days):
            self._peaks[slot] = 0.0
            self._fastest[slot] = math.inf
        self._modelled[i] = 0
        self._since[i] = self._day

    def add(self, i: int, w: Workload, facts: WindowFacts) -> WindowFacts:
        """Record the window, and return its facts with the largest peak and payload of the lookback."""
        base = i * self.days
        slot = base + self._day % self.days
        if facts.peak_memory_mb is not None:
            self._peaks[slot] = max(self._peaks[slot], facts.peak_memory_mb)
        payload = facts.extra.get("payload_kb_max")
        if payload is not None:
            self._payloads[slot] = max(self._payloads[slot], payload)
        mean_ms = facts.extra.get("duration_avg_ms")
        if mean_ms is not None:
            self._fastest[slot] = min(self._fastest[slot], mean_ms)
        if not facts.invocations:
            return facts
        peak = max(self._peaks[base : base + self.days])
        # The lookback's payloads are history too when no invocation survived (no peak).
        extra = dict(facts.extra)
        if MODEL_FACTS & extra.keys():
            self._modelled[i] = 1
        elif self._modelled[i]:
            extra.update(_model_facts(w))
        if peak > 0:
            extra["lookback_peak_memory_mb"] = peak
        extra["lookback_days"] = float(min(self.days, self._day + 1 - self._since[i]))
        fastest = min(self._fastest[base : base + self.days])
        if fastest < math.inf:
            extra["lookback_duration_avg_ms_min"] = fastest
        if payload is not None:
            extra["lookback_payload_kb_max"] = max(self._payloads[base : base + self.days])
        return replace(facts, extra=extra)


def _model_facts(w: Workload) -> dict[str, float]:
    """How memory grows, as a regression over the lookback's surviving invocations finds it."""
    if w.kind == "leak":
        return {
            "worker_start_memory_mb": w.start_mb,
            "memory_growth_mb_per_invocation": w.leak_mb,
            "worker_lifetime_invocations": float(w.worker_life),
        }
    return {"memory_mb_per_payload_kb": w.mb_per_kb, "memory_base_mb": w.start_mb}
