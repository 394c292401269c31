"""'Did you mean' for unknown keys: the keys a model allows at the place of a typo.

Pydantic reports an unknown key (``extra_forbidden``) with its location only; this
module walks the model along that location (through nested models, lists, mappings
and tagged unions) to the keys allowed there, and picks the closest one.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel


def did_you_mean(model: Any, loc: Sequence[Any]) -> str:
    """`` (did you mean 'x'?)`` for an unknown key at ``loc``, or ``""`` without a close key."""
    if not loc or not isinstance(loc[-1], str):
        return ""
    allowed = allowed_keys(model, loc[:-1])
    close = difflib.get_close_matches(loc[-1], allowed, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def allowed_keys(model: Any, path: Sequence[Any]) -> list[str]:
    """The field names (and aliases) of the model found at ``path`` inside ``model``."""
    current: Any = model
    for part in path:
        current = _step(current, part)
        if current is None:
            return []
    models = [m for m in _members(current) if _is_model(m)]
    keys: list[str] = []
    for m in models:
        for name, info in m.model_fields.items():
            keys.append(info.alias or name)
    return keys


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _members(tp: Any) -> list[Any]:
    """The alternatives of a union (Optional included), Annotated unwrapped."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _members(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _members(arg)]
    return [tp]


def _step(tp: Any, part: Any) -> Any:
    """The type one step down ``tp`` at ``part`` (a field, an index, a key or a union tag)."""
    for member in _members(tp):
        origin = typing.get_origin(member)
        args = typing.get_args(member)
        if _is_model(member) and isinstance(part, str):
            for name, info in member.model_fields.items():
                if part in (name, info.alias):
                    return info.annotation
        elif origin in (list, tuple, Sequence) and isinstance(part, int) and args:
            return args[0]
        elif origin is dict and isinstance(part, str) and len(args) == 2:
            return args[1]
    if isinstance(part, str):  # a tagged union names the member by its tag
        for member in _members(tp):
            if _is_model(member) and _has_tag(member, part):
                return member
    return None


def _has_tag(model: type[BaseModel], tag: str) -> bool:
    for info in model.model_fields.values():
        if typing.get_origin(info.annotation) is Literal and tag in typing.get_args(
            info.annotation
        ):
            return True
    return False
