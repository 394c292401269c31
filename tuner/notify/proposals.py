"""Proposals across the alerts of one message: what several findings have in common.

Advice about one decision is :mod:`tuner.decisions.advice`'s (planning writes it into the decision;
what to do about a failed or rolled-back change comes from there too).  Here are only the
proposals that need several alerts at once: a dependency failing for many functions, a
rule hitting many.  Every fact read here is in the fact reference (a test checks it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from tuner.decisions.advice import for_state
from tuner.domain.lifecycle import State
from tuner.domain.model import fact_number
from tuner.engine.reference import FAILING_DEPENDENCY_ERROR_RATE
from tuner.notify.alerts import Alert

SHARED_RULE_FUNCTIONS = 3


def _names(refs: Iterable[str], limit: int = 4) -> str:
    ordered = sorted(set(refs))
    shown = ", ".join(ordered[:limit])
    return shown + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def _failing_dependency(alert: Alert) -> str | None:
    if alert.dependency is not None:
        return alert.dependency
    worst = alert.facts.get("worst_dependency")
    rate = fact_number(alert.facts, "dependency_error_rate")
    if isinstance(worst, str) and rate is not None and rate >= FAILING_DEPENDENCY_ERROR_RATE:
        return worst
    return None


def shared_dependency(alerts: Sequence[Alert]) -> list[str]:
    """A dependency failing for several functions at once is the problem, not the functions."""
    refs_by_dependency: dict[str, set[str]] = defaultdict(set)
    fleet_count: dict[str, float] = defaultdict(float)
    for alert in alerts:
        dependency = _failing_dependency(alert)
        if dependency is None:
            continue
        refs_by_dependency[dependency].add(alert.ref)
        count = fact_number(alert.facts, "dependency_failing_functions") or 0.0
        fleet_count[dependency] = max(fleet_count[dependency], count)
    proposals = []
    for dependency, refs in sorted(refs_by_dependency.items()):
        count = max(len(refs), int(fleet_count[dependency]))
        if count < 2:
            continue
        which = _names(refs) if len(refs) == count else f"including {_names(refs)}"
        proposals.append(
            f"The dependency {dependency} failed for {count} functions at once "
            f"({which}): the problem is the dependency, not the functions. "
            f"Check {dependency}'s health and tell its owners; redeploying the functions "
            "will not help, so tuner does not change them for it."
        )
    return proposals


def fate(alert: Alert) -> str | None:
    """What to do about a change that failed or was rolled back."""
    change = alert.change
    what = change.describe() if change else alert.action
    return for_state(State(alert.state), what, alert.ref, alert.reason)


def shared_rule(alerts: Sequence[Alert]) -> list[str]:
    """Many functions hitting the same rule at once points at a common cause."""
    refs_by_rule: dict[str, set[str]] = defaultdict(set)
    for alert in alerts:
        if _failing_dependency(alert) is None:
            refs_by_rule[alert.rule].add(alert.ref)
    return [
        f"{len(refs)} functions hit '{rule}' at once ({_names(refs)}): look for a shared "
        "cause (a deploy, a traffic spike, a shared dependency) before tuning each one."
        for rule, refs in sorted(refs_by_rule.items())
        if len(refs) >= SHARED_RULE_FUNCTIONS
    ]


ACROSS_ALERTS: tuple[Callable[[Sequence[Alert]], list[str]], ...] = (
    shared_dependency,
    shared_rule,
)
"""Proposals about what several alerts have in common; these come first."""
PER_ALERT: tuple[Callable[[Alert], str | None], ...] = (fate,)
"""Proposals about one alert each."""


def propose(alerts: Sequence[Alert], limit: int = 8) -> list[str]:
    """The proposals for the alerts of one message, without repeats, most general first."""
    seen: dict[str, None] = {}
    for across in ACROSS_ALERTS:
        seen.update(dict.fromkeys(across(alerts)))
    for proposer in PER_ALERT:
        for alert in alerts:
            proposal = proposer(alert)
            if proposal is not None:
                seen.setdefault(proposal, None)
    return list(seen)[:limit]
