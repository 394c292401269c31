"""Advice drawn from traced evidence: where the time went, what held or wanted memory.

Pure: it reads the ``evidence`` fact (text the tracing executor produced) and the
counters, and names the flame graph and the traces a person should look at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _evidence(facts: Mapping[str, Any]) -> Mapping[str, Any]:
    evidence = facts.get("evidence")
    return evidence if isinstance(evidence, Mapping) else {}


def traced_advice(facts: Mapping[str, Any]) -> list[str]:
    """Sentences naming the hot call path of a slow function and the allocation of an OOM."""
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
        needed = f" It needed {need:.0f} MB." if isinstance(need, float | int) else ""
        out.append(
            f"Traced: {site}.{needed}{how} Memory flame graph: tuner profile {function} "
            "--kind memory."
        )
    return out
