"""Proposals to adopt tuner_handler, for a function whose knobs ran out and whose code does not.

When nothing tuner may change helps a function that times out or runs out of memory, and
its code does not use tuner_handler's handover or split, the message proposes the few
lines that adopt it, at the code its traces name: the loop the invocation was in when it
timed out (``evidence.hot_site``), the allocation that grows with the payload
(``evidence.allocation_site``, ``evidence.allocation_grows_with``).  Once the code uses
it, tuner switches the remedy on and sizes it.  Pure: facts in, sentences out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tuner.domain.model import fact_number

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _map(facts: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = facts.get(name)
    return value if isinstance(value, Mapping) else {}


def _text(evidence: Mapping[str, Any], name: str) -> str:
    value = evidence.get(name)
    return value if isinstance(value, str) else ""


def handover_proposal(facts: Mapping[str, Any]) -> str:
    """How to let tuner hand a long job over, at the loop the traces name."""
    site = _text(_map(facts, "evidence"), "hot_site")
    where = f"the loop in {site}" if site else "the handler's main loop"
    return (
        "A job longer than the timeout can run as a chain of invocations: adopt "
        "tuner_handler's handover (shipped with tuner, standard library only) and tuner "
        f"switches it on. In a few lines, at {where}: `from tuner_handler import handover`; "
        "`@handover` above `def handler(event, context):`; loop with "
        "`for item in context.each(items):` and keep what the steps add up in "
        "`context.state` (each step runs at least once: docs/remedies.md)."
    )


def split_proposal(facts: Mapping[str, Any]) -> str:
    """How to let tuner split a payload, by the list the failing allocation grows with."""
    evidence = _map(facts, "evidence")
    site = _text(evidence, "allocation_site")
    grows = _text(evidence, "allocation_grows_with").split(", ")[0]
    field = grows if _NAME.match(grows) else "ITEMS"
    traced = f" The traces name the allocation: {site}." if site else ""
    return (
        "A payload that needs more memory than the function may have can run in parts: "
        "adopt tuner_handler's split (shipped with tuner, standard library only) and tuner "
        f"sizes the parts.{traced} In a few lines: `from tuner_handler import split`; "
        f'`@split("{field}")` above `def handler(event, context):`, where `{field}` is the '
        "event's list field the memory grows with (or `@split(by=..., merge=...)`); the "
        "parts' results are merged (docs/remedies.md)."
    )


def adoption_advice(facts: Mapping[str, Any], *, stuck: bool) -> list[str]:
    """The proposals that apply: only when nothing tuner may change can act (``stuck``)."""
    if not stuck:
        return []
    out = []
    extra = _map(facts, "extra")
    if (fact_number(facts, "timeouts") or 0) > 0 and not fact_number(extra, "supports_handover"):
        out.append(handover_proposal(facts))
    if (fact_number(facts, "ooms") or 0) > 0 and not fact_number(extra, "supports_split"):
        out.append(split_proposal(facts))
    return out
