"""The observe step: every provider's targets and their windows, untrue windows set aside.

One batched call per provider covers its whole fleet.  A provider that fails is left out
of this cycle and the others go on; a window that cannot be true is recorded as such and
its function treated as having no data; a window that does not overlap the cycle's is no
data either.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import structlog

from tuner.daemon.cycle import CycleState, Observed
from tuner.daemon.retrying import Retrier
from tuner.decisions.planning import telemetry_decision
from tuner.domain.model import FunctionRef, Mode, WindowFacts
from tuner.domain.ports import Provider
from tuner.engine.telemetry import impossible

log = structlog.get_logger(__name__)


def observe(
    cycle: CycleState,
    providers: Sequence[Provider],
    retry: Retrier,
    mode: Mode,
    only: frozenset[FunctionRef] | None = None,
) -> None:
    """Fill ``cycle.observed`` and ``cycle.listed``; untrue windows go to ``cycle.set_aside``.

    With ``only`` (an early cycle) just those functions are observed, and no provider
    counts as listed: the functions left out are not gone, only not looked at.
    """
    report = cycle.report
    for provider in providers:
        try:
            targets = list(retry(provider.targets))
            if only is not None:
                targets = [t for t in targets if t.ref in only]
                if not targets:
                    continue
            windows = retry(partial(provider.observe, targets, cycle.start, cycle.now))
        except Exception as exc:  # noqa: BLE001 - one provider never stops the others
            report.errors.append(f"{provider.name}: {exc}")
            log.error("provider failed", provider=provider.name, error=str(exc))
            continue
        report.targets += len(targets)
        if only is None:
            cycle.listed.add(provider.name)
        for target in targets:
            window = windows.get(target.ref)
            why = impossible(window) if window is not None else None
            if why is not None:
                log.warning("bad telemetry, window ignored", function=target.ref.key, why=why)
                cycle.set_aside.append(telemetry_decision(target.ref, why, mode, cycle.now))
                window = None
            window = _current(window, cycle.start, cycle.now)
            cycle.observed.append(Observed(provider, target, window))


def _current(window: WindowFacts | None, start: float, end: float) -> WindowFacts | None:
    """The window when it overlaps ``[start, end)``; late, future or inverted windows are no data."""
    if window is None or (window.start < window.end and window.end > start and window.start < end):
        return window
    log.warning(
        "window out of range, ignored",
        function=window.ref.key,
        start=window.start,
        end=window.end,
        wanted_start=start,
        wanted_end=end,
    )
    return None
