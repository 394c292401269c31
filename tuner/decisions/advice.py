"""Advice: what a person should do next, drawn from one decision's facts, plan and state.

Pure, and the one owner of per-decision advice.  Planning writes :func:`for_finding`
into each decision (with the rule's own advice); the notifier adds :func:`for_state` once
the decision's fate is known, and only the proposals that need several alerts at once
(a dependency failing for many functions, a rule hitting many) live beside the messages.
Every fact read here is in the fact reference (a test checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.decisions.adopting import adoption_advice
from tuner.decisions.shape_advice import shape_proposals
from tuner.domain.lifecycle import State
from tuner.domain.model import (
    Change,
    FunctionConfig,
    Knob,
    Limits,
    Mode,
    extra_number,
    fact_number,
    trace_ids,
)

SLOW_DEPENDENCY_MS = 200.0
"""A dependency p95 above this with the cache on calls for moving the data closer."""


def for_finding(
    facts: Mapping[str, Any],
    change: Change | None,
    config: FunctionConfig,
    limits: Limits,
    global_mode: Mode,
    rule_mode: Mode | None,
    *,
    stuck: bool = False,
) -> list[str]:
    """Suggestions for one finding beyond the rule's own advice, each true for this function.

    ``stuck``: none of the rule's actions can change anything.
    """
    out: list[str] = []
    ooms = fact_number(facts, "ooms") or 0.0
    at_cap = config.memory_mb >= limits.memory_max_mb or (
        change is not None
        and change.knob is Knob.MEMORY_MB
        and change.after >= limits.memory_max_mb
    )
    resized = change is None or change.knob is Knob.MEMORY_MB  # not split already
    if ooms > 0 and (stuck or at_cap) and resized:
        out.append(
            "Memory cannot grow further: split the work map-reduce style, or move "
            "large private state out of the function."
        )
    timeout_rate = fact_number(facts, "timeout_rate") or 0.0
    near_limit = (fact_number(facts, "duration_timeout_ratio") or 0.0) >= 0.9
    if timeout_rate > 0 and near_limit and (change is None or change.knob is Knob.TIMEOUT_S):
        timeout_ms = fact_number(facts, "timeout_ms")
        limit = f"the {timeout_ms / 1000:g} s timeout" if timeout_ms else "the timeout"
        split = extra_number(facts, "split_share")
        if config.batch_size is not None:
            how = f"smaller batches than {config.batch_size} records"
        elif config.fan_out is not None and split != 0:
            how = f"a fan-out over more than {config.fan_out} parts"
        elif split == 0:
            how = (
                "a continuation that hands its state over; its events are not lists, so a "
                "fan-out cannot split them until the function takes its work as a list"
            )
        else:
            how = "a continuation that hands its state over, or a map-reduce fan-out over parts"
        out.append(
            f"{timeout_rate:.0%} of the invocations hit {limit}: a longer timeout only "
            f"postpones this. Decompose the work: {how}."
        )
    out.extend(adoption_advice(facts, stuck=stuck))
    latency = fact_number(facts, "dependency_latency_p95_ms")
    out.extend(slow_dependency_advice(facts, latency))
    if latency and latency > SLOW_DEPENDENCY_MS and facts.get("cache_enabled") is True:
        dep = facts.get("worst_dependency")
        which = f"'{dep}'" if isinstance(dep, str) and dep else "the dependency"
        out.append(
            f"{which} stays at {latency:.0f} ms p95 with the cache on: move the data closer "
            "(a copy near the function, or an edge location)."
        )
    out.extend(shape_proposals(facts, change))
    out.extend(traced_advice(facts))
    if change is not None and global_mode.stricter(rule_mode) is Mode.RECOMMEND:
        out.append(_how_to_apply(change, global_mode, rule_mode))
    return out


def _how_to_apply(change: Change, global_mode: Mode, rule_mode: Mode | None) -> str:
    """The one true way to let tuner apply a recommended change, for the modes in force."""
    where = []
    if global_mode is not Mode.APPLY:
        where.append("`mode: apply` in tuner.yaml")
    if rule_mode is not None and rule_mode is not Mode.APPLY:
        where.append("remove the rule's own `mode`")
    how = " and ".join(where)
    return f"Apply {change.describe()} by hand, or let tuner do it: {how}."


def for_state(state: State, what: str, ref: str, reason: str) -> str | None:
    """What to do about a change once its fate is known (failed or rolled back)."""
    if state is State.FAILED:
        why = f" ({reason})" if reason else ""
        return (
            f"tuner could not apply {what} on {ref}{why}: check tuner's permissions and the "
            "function's state; it tries again after the cooldown."
        )
    if state is State.ROLLED_BACK:
        return (
            f"tuner undid {what} on {ref} ({reason or 'later windows were worse'}): the "
            "bottleneck is elsewhere. Look at the evidence before trying it again."
        )
    return None


def _evidence(facts: Mapping[str, Any]) -> Mapping[str, Any]:
    evidence = facts.get("evidence")
    return evidence if isinstance(evidence, Mapping) else {}


def flame_graph_command(facts: Mapping[str, Any]) -> str:
    """The command that draws the flame graph behind the evidence (memory for an OOM)."""
    function = facts.get("function") or "FUNCTION"
    memory = " --kind memory" if (fact_number(facts, "ooms") or 0) > 0 else ""
    return f"tuner profile {function}{memory}"


def slow_dependency_advice(facts: Mapping[str, Any], latency: float | None) -> list[str]:
    """The sentence naming the slow dependency from the topology, when one is slow."""
    where = _evidence(facts).get("slow_dependency")
    if not (latency and latency > SLOW_DEPENDENCY_MS and isinstance(where, str) and where):
        return []
    return [f"The topology shows where the time goes: {where}. Graph: tuner topology --format svg."]


def traced_advice(facts: Mapping[str, Any]) -> list[str]:
    """Sentences naming the hot call path of a slow function, the allocation of an OOM and
    the traces (with the flame graph's command) the decision rests on."""
    out = _code_advice(facts)
    ids = trace_ids(facts)
    if ids:
        function = facts.get("function") or "FUNCTION"
        graph = "" if out else f"; flame graph: {flame_graph_command(facts)}"
        out.append(f"Traces behind this: {', '.join(ids)} (tuner traces {function}){graph}.")
    return out


def _code_advice(facts: Mapping[str, Any]) -> list[str]:
    evidence = _evidence(facts)
    function = facts.get("function") or "FUNCTION"
    out: list[str] = []
    slow = (facts.get("timeouts") or 0) > 0 or (facts.get("duration_timeout_ratio") or 0) > 0.9
    hot = evidence.get("hot_path")
    if slow and hot:
        out.append(f"Traced: {hot}. Flame graph: tuner profile {function}.")
    site = evidence.get("allocation_site")
    if (facts.get("ooms") or 0) > 0 and site:
        grows = evidence.get("allocation_grows_with")
        how = (
            f" It grows with {grows}: fan out by {grows} so that each invocation holds a "
            "bounded share."
            if grows
            else ""
        )
        need = facts.get("traced_peak_memory_mb")
        needed = f" The trace saw a peak of {need:.0f} MB." if isinstance(need, float | int) else ""
        out.append(
            f"Traced: {site}.{needed}{how} Memory flame graph: tuner profile {function} "
            "--kind memory."
        )
    return out
