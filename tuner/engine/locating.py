"""Located problems: every input error names its file, its line and its field.

One builder for every YAML input tuner reads: rule files, ``tuner.yaml`` (with its
provider and notification sections) and the operator's TuningPolicies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from tuner.domain.errors import Problem
from tuner.domain.registry import UnknownNameError
from tuner.engine.actions import ACTIONS
from tuner.engine.keyhints import did_you_mean
from tuner.engine.yamlfiles import nearest_line


def located_problems(
    exc: ValidationError,
    source: str,
    lines: Mapping[tuple[Any, ...], int],
    data: Any = None,
    *,
    model: Any = None,
    prefix: tuple[Any, ...] = (),
    rule_file: bool = False,
) -> list[Problem]:
    """Turn pydantic errors into problems that name the file, the line and the field.

    Every YAML input (rule files, ``tuner.yaml``, its provider and notification sections,
    TuningPolicies) reports its errors through here.  ``lines`` maps a path in the loaded
    data to its line; ``prefix`` is where the validated part sits in the file (e.g.
    ``("providers", 0)``), and is part of the field named; in rule files the rule is
    named too.  ``model`` is the validated model, at ``prefix``: an unknown key then
    suggests the closest known one.
    """
    problems = []
    for err in exc.errors():
        loc = prefix + tuple(err["loc"])
        rule = _rule_name(data, loc) if rule_file else None
        path = loc[2:] if rule else loc
        field = _field(path, indexed=not rule_file)
        message = _message(err, loc, model, len(prefix))
        problems.append(
            Problem(source, nearest_line(lines, _strip_tags(loc)), message, rule, field)
        )
    return problems


_ACTION_TAGS = set(ACTIONS)


def _field(path: tuple[Any, ...], *, indexed: bool) -> str | None:
    """``('providers', 0, 'functions_dir')`` -> ``providers[0].functions_dir``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]" if indexed else ""
        elif part not in _ACTION_TAGS:
            out += f".{part}" if out else str(part)
    return out or None


def _strip_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(p for p in loc if p not in _ACTION_TAGS)


def _rule_name(data: Any, loc: tuple[Any, ...]) -> str | None:
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        try:
            name = data["rules"][loc[1]].get("name")
        except (KeyError, IndexError, TypeError, AttributeError):
            return f"#{loc[1] + 1}"
        return str(name) if name else f"#{loc[1] + 1}"
    return None


def _message(err: Any, loc: tuple[Any, ...], model: Any, skip: int) -> str:
    kind = err["type"]
    if kind == "union_tag_invalid":
        tag = str(err.get("ctx", {}).get("tag", ""))
        return str(UnknownNameError(ACTIONS.kind, tag, list(ACTIONS)))
    if kind == "union_tag_not_found":
        return "an action needs an 'action' field, e.g. 'action: more-memory'"
    if kind == "extra_forbidden":
        hint = did_you_mean(model, loc[skip:]) if model is not None else ""
        return f"unknown key '{loc[-1]}'{hint}"
    return str(err["msg"])
