"""Proposals drawn from the data: what a person should do next, beyond the rule's advice.

Each proposal looks at all alerts of one message at once, because the most useful
advice is often about what several findings have in common.  The facts read here are
the engine's fact names (``worst_dependency``, ``dependency_error_rate``,
``duration_timeout_ratio`` ...) plus, from ``extra``, ``memory_payload_correlation``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tuner.engine.facts import FAILING_DEPENDENCY_ERROR_RATE
from tuner.model import fact_number
from tuner.notify.alerts import Alert

CORRELATION_STRONG = 0.7
SHARED_RULE_FUNCTIONS = 3


def _number(facts: Mapping[str, Any], name: str) -> float | None:
    """A numeric fact, looked up among the provider's ``extra`` facts when not a fact itself."""
    if facts.get(name) is not None:
        return fact_number(facts, name)
    extra = facts.get("extra")
    return fact_number(extra, name) if isinstance(extra, Mapping) else None


def _names(refs: Iterable[str], limit: int = 4) -> str:
    ordered = sorted(set(refs))
    shown = ", ".join(ordered[:limit])
    return shown + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def _failing_dependency(alert: Alert) -> str | None:
    if alert.dependency is not None:
        return alert.dependency
    worst = alert.facts.get("worst_dependency")
    rate = _number(alert.facts, "dependency_error_rate")
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
        count = _number(alert.facts, "dependency_failing_functions") or 0.0
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


def memory_grows_with_payload(alert: Alert) -> str | None:
    """Memory that grows with the payload calls for splitting the work, not more memory."""
    correlation = _number(alert.facts, "memory_payload_correlation")
    if correlation is None or correlation < CORRELATION_STRONG:
        return None
    return (
        f"Memory of {alert.ref} grows with the payload size (correlation "
        f"{correlation:.2f}): more memory only moves the limit. Split the work "
        "map-reduce style (smaller batches, fan-out over parts) so each invocation "
        "handles a bounded share."
    )


def memory_at_limit(alert: Alert) -> str | None:
    """Running out of memory at the provider's maximum leaves only decomposition."""
    limit = _number(alert.facts, "memory_max_mb")
    if alert.knob != "memory_mb" or limit is None or (alert.after or 0) < limit:
        return None
    return (
        f"{alert.ref} now has the most memory the provider allows ({limit:.0f} MB). "
        "If it runs out again, re-cluster or split its work map-reduce style."
    )


def timeouts(alert: Alert) -> str | None:
    """A tail at the timeout calls for smaller or resumable work, not only more time."""
    rate = _number(alert.facts, "timeout_rate")
    ratio = _number(alert.facts, "duration_timeout_ratio")
    timeout_ms = _number(alert.facts, "timeout_ms")
    if not rate or ratio is None or ratio < 0.9 or timeout_ms is None:
        return None
    if alert.event and alert.knob in ("batch_size", "fan_out"):
        return None  # tuner is decomposing the work already: the message says how
    batch = _number(alert.facts, "batch_size")
    how = (
        f"smaller batches than {batch:.0f} records"
        if batch is not None
        else "a continuation that hands over its state, or a fan-out over parts"
    )
    return (
        f"{rate:.0%} of the invocations of {alert.ref} hit the {timeout_ms / 1000:g} s "
        f"timeout: a longer timeout only postpones this. Decompose the work: {how}."
    )


def outcomes(alert: Alert) -> str | None:
    """What to do about a change that was recommended, failed or rolled back."""
    change = alert.change
    what = change.describe() if change else alert.action
    if alert.outcome == "recommended":
        return (
            f"Apply {what} on {alert.ref} by hand, or set mode: apply for the rule "
            f"'{alert.rule}' to let tuner do it."
        )
    if alert.outcome == "failed":
        reason = f" ({alert.reason})" if alert.reason else ""
        return (
            f"tuner could not apply {what} on {alert.ref}{reason}: check tuner's "
            "permissions and the function's state; it tries again after the cooldown."
        )
    if alert.outcome == "rolled-back":
        return (
            f"tuner undid {what} on {alert.ref} because later windows were worse: the "
            "bottleneck is elsewhere. Look at the evidence before trying it again."
        )
    return None


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
PER_ALERT: tuple[Callable[[Alert], str | None], ...] = (
    memory_grows_with_payload,
    memory_at_limit,
    timeouts,
    outcomes,
)
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
