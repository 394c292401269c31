"""Actions: strategies that turn a firing rule into a concrete change, clamped to limits.

:data:`Action` is the one list of actions (edit it to add one); :data:`ACTIONS`, the
registry, the rule files' validation and their JSON Schema are derived from it.
"""

from __future__ import annotations

from typing import Annotated, get_args

from pydantic import Field

from tuner.domain.registry import Entry, Registry
from tuner.engine.actions.base import BaseAction, Plan, not_applicable
from tuner.engine.actions.decomposition import Handover, Split, SplitLarge
from tuner.engine.actions.granularity import FanOut, LessConcurrency, LongerTimeout, SmallerBatches
from tuner.engine.actions.memory import LessMemory, MoreMemory
from tuner.engine.actions.shaping import Fuse, NearReplica, SplitPath, ZoneAffinity
from tuner.engine.actions.telling import EnableCache, Notify, Trace
from tuner.engine.actions.trials import CheapestMemory, TryMemory

__all__ = [
    "ACTIONS",
    "Action",
    "BaseAction",
    "CheapestMemory",
    "EnableCache",
    "FanOut",
    "Handover",
    "Fuse",
    "LessConcurrency",
    "LessMemory",
    "LongerTimeout",
    "MoreMemory",
    "NearReplica",
    "Notify",
    "Plan",
    "SmallerBatches",
    "Split",
    "SplitLarge",
    "SplitPath",
    "Trace",
    "TryMemory",
    "ZoneAffinity",
    "action_class",
    "not_applicable",
]


Action = Annotated[
    MoreMemory
    | LessMemory
    | LongerTimeout
    | SmallerBatches
    | FanOut
    | LessConcurrency
    | Handover
    | Split
    | SplitLarge
    | EnableCache
    | Notify
    | Trace
    | TryMemory
    | CheapestMemory
    | Fuse
    | SplitPath
    | NearReplica
    | ZoneAffinity,
    Field(discriminator="action"),
]
"""Any action of a rule, told apart by its ``action`` field."""


def _entry(cls: type[BaseAction]) -> Entry[type[BaseAction]]:
    summary = (cls.__doc__ or "").split("\n")[0]
    return Entry(cls.model_fields["action"].default, lambda: cls, settings=cls, summary=summary)


ACTIONS: Registry[type[BaseAction]] = Registry(
    "action", [_entry(cls) for cls in get_args(get_args(Action)[0])]
)
"""The registry of actions, derived from :data:`Action` (the one list to edit)."""


def action_class(name: str) -> type[BaseAction] | None:
    """The class of the action a decision names, or None (a rollback, a resolved rule)."""
    return ACTIONS.get(name)
