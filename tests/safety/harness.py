"""Shared pieces of the safety tests: the bundled rules, windows and a daemon over fakes."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from tests.fakes import FakeClock, RecordingNotifier
from tuner.daemon.loop import Daemon, DaemonSettings
from tuner.decisions.guard import GuardPolicy
from tuner.decisions.verifying import VerifyPolicy
from tuner.domain.decisions import Decision
from tuner.domain.lifecycle import State
from tuner.domain.model import FunctionRef, WindowFacts
from tuner.domain.ports import Provider
from tuner.engine import RuleBase, parse_rules
from tuner.store.audit import SqliteStore

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RULES = REPO / "rules" / "default.yaml"
WINDOW_S = 60.0


@cache
def default_rules() -> RuleBase:
    """The bundled rule base, parsed once per test session."""
    return parse_rules(DEFAULT_RULES.read_text(encoding="utf-8"), str(DEFAULT_RULES))


def healthy(ref: FunctionRef, **overrides: Any) -> WindowFacts:
    """A window of a function that is doing fine: no rule of the bundled base fires."""
    values: dict[str, Any] = dict(
        invocations=100,
        errors=0,
        timeouts=0,
        ooms=0,
        throttles=0,
        duration_p50_ms=40.0,
        duration_p95_ms=80.0,
        duration_p99_ms=90.0,
        peak_memory_mb=100.0,
    )
    values.update(overrides)
    return WindowFacts(ref, 0.0, WINDOW_S, **values)


def oom(ref: FunctionRef, **overrides: Any) -> WindowFacts:
    """A window in which a function ran out of memory 5 times in 100 invocations."""
    return healthy(ref, **{"ooms": 5, "errors": 5, "peak_memory_mb": 250.0, **overrides})


def make_daemon(
    providers: Sequence[Provider],
    store: SqliteStore,
    clock: FakeClock,
    *,
    notifier: RecordingNotifier | None = None,
    sleep: Callable[[float], None] | None = None,
    verify_policy: VerifyPolicy | None = None,
    guard_policy: GuardPolicy | None = None,
) -> Daemon:
    """A daemon in apply mode over the bundled rules, with one-minute windows."""
    return Daemon(
        providers=providers,
        rules=default_rules(),
        store=store,
        notifier=notifier,
        clock=clock,
        sleep=sleep or time.sleep,
        settings=DaemonSettings(
            window_s=WINDOW_S,
            verify_policy=verify_policy or VerifyPolicy(),
            guard_policy=guard_policy or GuardPolicy(),
        ),
    )


def applied(store: SqliteStore, ref: FunctionRef | None = None) -> list[Decision]:
    """Decisions of the store whose change went live (including those later rolled back)."""
    return [d for d in store.decisions(ref, limit=100_000) if d.applied and d.change is not None]


def outcomes(decisions: Sequence[Decision]) -> list[tuple[str, State]]:
    """(action, outcome) pairs, compact for assertions."""
    return [(d.action, d.state) for d in decisions]
