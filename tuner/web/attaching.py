"""Hooking the live state, the metrics and the HTTP server into a wired tuner."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from tuner.daemon.live import LiveState
from tuner.domain.errors import ConfigError, Problem
from tuner.domain.times import DAY_S
from tuner.notify.center import NotificationCenter
from tuner.web.api import Sources
from tuner.web.controls import Actions
from tuner.web.metrics import MeteredProvider, Metrics, Watched
from tuner.web.server import WebServer

if TYPE_CHECKING:
    from tuner.daemon.reports import CycleReport
    from tuner.daemon.wiring import Tuner
    from tuner.domain.model import Finding, Target
    from tuner.engine import RuleBase

log = structlog.get_logger(__name__)


class _Quiet:
    """Passes the loop's calls to an observer, logging instead of raising any fault."""

    def __init__(self, observer: Any):
        self.observer = observer

    def function_observed(
        self, target: Target, facts: Mapping[str, Any], findings: Sequence[Finding], now: float
    ) -> None:
        try:
            self.observer.function_observed(target, facts, findings, now)
        except Exception:  # noqa: BLE001 - the dashboard never stops the loop
            log.exception("insight observer failed", function=target.ref.key)

    def cycle_finished(self, report: CycleReport, rules: RuleBase) -> None:
        try:
            self.observer.cycle_finished(report, rules)
        except Exception:  # noqa: BLE001 - the dashboard never stops the loop
            log.exception("insight observer failed at the end of a cycle")


@dataclass
class Insight:
    """The live state, the metrics and (when serving) the web server of one daemon."""

    state: LiveState
    metrics: Metrics
    sources: Sources
    server: WebServer | None = None
    pending: Callable[[], int] | None = None
    """How many messages the tuner's outbox holds, when it has one."""

    @property
    def watched(self) -> Watched:
        """What the scrape-time gauges read of this tuner."""
        return Watched(self.state, self.sources.fleet, self.pending)

    @property
    def url(self) -> str | None:
        """The dashboard's address, when it is served."""
        return self.server.url if self.server else None

    def close(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.close()


def attach(
    tuner: Tuner,
    address: tuple[str, int] | None,
    *,
    token: str | None = None,
    slots: int | None = None,
    poll_ms: int = 3000,
    required: bool = True,
    metrics: Metrics | None = None,
) -> Insight:
    """Hook the live state and metrics into a wired tuner; serve HTTP at ``address`` unless None.

    When the address is taken, a ``required`` server is a located error; otherwise (the
    default address nobody asked for) the daemon runs on without it and logs why.
    ``metrics`` shared by several tuners count for all of them; their scrape-time gauges
    are then the sharer's to add (:meth:`Metrics.watch_all` over each :attr:`Insight.watched`).
    """
    daemon = tuner.daemon
    now = daemon.clock.now()
    state = LiveState(tuner.config.interval, started=now, **({"slots": slots} if slots else {}))
    state.set_rules(tuner.rules.rules)
    state.add_decisions(tuner.store.decisions(since=now - DAY_S, limit=100_000))
    shared = metrics is not None
    metrics = metrics if metrics is not None else Metrics()
    daemon.observers.extend([_Quiet(state), _Quiet(metrics)])
    daemon.providers[:] = [
        MeteredProvider(p, metrics) for p in daemon.providers
    ]  # in place: shared
    observe_delivery = getattr(tuner.notifier, "observe_delivery", None)
    if observe_delivery is not None:
        observe_delivery(metrics.notification)
    tuner.rules.on_reload = metrics.reload
    sources = Sources(
        state,
        store=tuner.store,
        db_path=Path(tuner.store.path) if tuner.store.path != ":memory:" else None,
        outbox=tuner.notifier.outbox if isinstance(tuner.notifier, NotificationCenter) else None,
        streaks=lambda: daemon.streaks.counts,
        clock=daemon.clock.now,
    )
    insight = Insight(state, metrics, sources, pending=getattr(tuner.notifier, "pending", None))
    if not shared:
        metrics.watch_all(lambda: [insight.watched])
    if address is not None:
        actions = Actions(tuner.control, token, on_done=state.add_decisions)
        try:
            insight.server = WebServer(sources, metrics, *address, actions=actions, poll_ms=poll_ms)
        except OSError as exc:
            why = (
                f"cannot listen on {address[0]}:{address[1]}: {exc.strerror}; "
                "choose another with --http HOST:PORT, or --http off"
            )
            if required:
                raise ConfigError([Problem("--http", None, why)]) from None
            log.warning("no dashboard or metrics", reason=why)
            return insight
        insight.server.start()
    return insight
