"""What a worker's tuner_handler asks of the host: to hand its state over, or to run parts.

The host answers through the invocation's :class:`~tuner.providers.local.executions.Remedies`
(see ``decomposing.py``); an invocation without them (a probe) is refused.  What a
handler says it supports arrives with the worker's ``ready``: a claim, checked for shape
only (it decides what tuner may plan, never an outcome).
"""

from __future__ import annotations

from typing import Any

from tuner.providers.local.executions import Remedies

REMEDY_REQUESTS = frozenset({"handover", "invoke_parts"})
"""The messages a worker sends for tuner_handler."""


def remedy_reply(kind: str, message: dict[str, Any], remedies: Remedies | None) -> dict[str, Any]:
    """The reply to a ``handover`` or ``invoke_parts`` request."""
    if kind == "handover":
        if remedies is None:
            return {"type": "handover_reply", "accepted": False, "error": "not in this invocation"}
        return remedies.hand_over(message)
    if remedies is None:
        return {"type": "parts_result", "error": "not in this invocation"}
    return remedies.run(message)


def claimed_remedies(ready: Any) -> frozenset[str]:
    """The remedies a worker's ``ready`` message says its handler supports (short names only)."""
    claimed = ready.get("supports") if isinstance(ready, dict) else None
    if not isinstance(claimed, list):
        return frozenset()
    return frozenset(c for c in claimed[:4] if isinstance(c, str) and len(c) < 20)
