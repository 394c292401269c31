"""The safety state of a TuningPolicy kept in the cluster: its changes, in the policy's status.

The SQLite audit store of a replica lives on that replica's volume; after a failover the
new leader does not have it.  What guards safety is therefore also written to the
policy's ``status.changes``, one entry per change keyed by decision id::

    status:
      changes:
        6f1c...:
          function: kubernetes:shop/deployment.api
          rule: oom
          action: more-memory
          knob: memory_mb
          before: 256
          after: 512
          time: "2026-11-30T17:40:00Z"
          state: applied              # applying | applied | failed | superseded |
                                      # improved | partial | unchanged | worse | rolled-back
          intent: {id: 9a0b..., state: open}   # open until the change is settled
          windows: 1                  # windows judged so far
          undoes: ""                  # for a rollback: the change it reverses
          decision: '{...}'           # the whole decision, facts included, as JSON

The entry is written before the workload is changed (intent open) and updated as the
change is applied, judged and settled.  A new leader reads them back
(:meth:`ClusterStateMirror.read`) to rebuild cooldowns, pending verifications and open
intents.  Kopf and the Vertical Pod Autoscaler keep their state the same way: in the
API server, next to the object it belongs to.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from operators.settings import GROUP, PLURAL, VERSION
from operators.status import timestamp
from tuner.domain.decisions import Decision, Intent, Kind
from tuner.domain.holds import Hold
from tuner.domain.lifecycle import IntentState, State, Verdict
from tuner.domain.model import Change, FunctionRef, Knob, Mode, Severity
from tuner.providers.kubernetes.api import KubeApi, NotFoundError

log = structlog.get_logger(__name__)

STATUS_KEY = "changes"
"""The key under the policy's status that holds its changes."""


@dataclass(frozen=True, slots=True)
class MirroredChange:
    """One change as the cluster keeps it: the decision (windows judged included), its intent."""

    decision: Decision
    intent: Intent | None


def _plain(value: Any) -> Any:
    """JSON-safe facts: mappings and finite numbers (a non-finite number is unknown)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def encode_decision(decision: Decision) -> str:
    """The decision as JSON text (every field, facts included)."""
    change = decision.change
    return json.dumps(
        {
            "id": decision.id,
            "time": decision.time,
            "ref": decision.ref.key,
            "rule": decision.rule,
            "action": decision.action,
            "severity": decision.severity.value,
            "mode": decision.mode.value,
            "state": decision.state.value,
            "verdict": decision.verdict.value if decision.verdict else None,
            "facts": _plain(decision.facts),
            "change": None
            if change is None
            else {"knob": change.knob.value, "before": change.before, "after": change.after},
            "summary": decision.summary,
            "advice": decision.advice,
            "reason": decision.reason,
            "judged_windows": decision.judged_windows,
            "channels": list(decision.channels),
            "group": decision.group,
            "undoes": decision.undoes,
            "kind": decision.kind.value,
            "hold": decision.hold.as_json() if decision.hold is not None else None,
        },
        sort_keys=True,
        allow_nan=False,
    )


def decode_decision(text: str) -> Decision:
    """The decision from :func:`encode_decision`'s text; ValueError/KeyError when malformed."""
    raw = json.loads(text)
    change = raw.get("change")
    verdict = raw.get("verdict")
    return Decision(
        id=str(raw["id"]),
        time=float(raw["time"]),
        ref=FunctionRef.parse(str(raw["ref"])),
        rule=str(raw["rule"]),
        action=str(raw["action"]),
        severity=Severity(raw["severity"]),
        mode=Mode(raw["mode"]),
        state=State(raw["state"]),
        verdict=Verdict(verdict) if verdict else None,
        facts=dict(raw.get("facts") or {}),
        change=None
        if change is None
        else Change(Knob(change["knob"]), change.get("before"), change["after"]),
        summary=str(raw.get("summary", "")),
        advice=str(raw.get("advice", "")),
        reason=str(raw.get("reason", "")),
        judged_windows=int(raw.get("judged_windows") or 0),
        channels=tuple(raw.get("channels") or ()),
        group=str(raw.get("group", "")),
        undoes=str(raw.get("undoes", "")),
        hold=Hold.from_json(raw["hold"]) if raw.get("hold") else None,
        kind=Kind(raw.get("kind") or (Kind.ROLLBACK if raw.get("undoes") else Kind.FINDING)),
    )


def entry(record: MirroredChange) -> dict[str, Any]:
    """The status entry of one change: readable fields and the whole decision."""
    decision = record.decision
    change = decision.change
    intent = record.intent
    return {
        "function": decision.ref.key,
        "rule": decision.rule,
        "action": decision.action,
        "knob": change.knob.value if change else None,
        "before": change.before if change else None,
        "after": change.after if change else None,
        "time": timestamp(decision.time),
        "state": decision.state.value,
        "intent": None
        if intent is None
        else {"id": intent.id, "state": intent.state.value, "created": intent.created},
        "windows": decision.judged_windows,
        "undoes": decision.undoes,
        "decision": encode_decision(decision),
    }


def parse_entry(raw: Mapping[str, Any]) -> MirroredChange:
    """A change from its status entry; ValueError/KeyError/TypeError when malformed."""
    decision = decode_decision(str(raw["decision"]))
    intent_raw = raw.get("intent")
    intent = None
    if intent_raw:
        changes = (decision.change,) if decision.change is not None else ()
        intent = Intent(
            id=str(intent_raw["id"]),
            decision_id=decision.id,
            ref=decision.ref,
            changes=changes,
            created=float(intent_raw.get("created", decision.time)),
            state=IntentState(str(intent_raw.get("state", "open"))),
        )
    return MirroredChange(decision, intent)


def policy_status_path(namespace: str, name: str) -> str:
    """The API path of a TuningPolicy's status subresource."""
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"


class ClusterStateMirror:
    """Reads and writes the changes of one TuningPolicy in its ``status.changes``."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        name: str,
        *,
        on_write: Callable[[int], None] | None = None,
    ) -> None:
        """Keep the state of policy ``namespace/name``; ``on_write`` sees each write's size."""
        self._api = api
        self._status_path = policy_status_path(namespace, name)
        self._policy_path = self._status_path.removesuffix("/status")
        self.policy = f"{namespace}/{name}"
        self._on_write = on_write

    def read(self) -> dict[str, MirroredChange]:
        """The changes the cluster holds, by decision id; a malformed entry is skipped, logged.

        Raises :class:`tuner.domain.errors.ProviderError` when the API cannot be read: a leader
        that cannot learn the cluster's state must not act.
        """
        try:
            policy = self._api.get(self._policy_path)
        except NotFoundError:
            return {}
        raw = (policy.get("status") or {}).get(STATUS_KEY) or {}
        found: dict[str, MirroredChange] = {}
        for key, value in raw.items():
            if not isinstance(value, Mapping):
                continue
            try:
                found[key] = parse_entry(value)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning(
                    "cluster_state_entry_unreadable", policy=self.policy, id=key, error=str(exc)
                )
        return found

    def write(self, changes: Mapping[str, MirroredChange | None]) -> None:
        """Write (or, for None, delete) entries with one merge patch of the status."""
        if not changes:
            return
        body = {
            "status": {
                STATUS_KEY: {
                    key: None if record is None else entry(record)
                    for key, record in changes.items()
                }
            }
        }
        self._api.patch(self._status_path, body)
        if self._on_write is not None:
            self._on_write(len(changes))
