"""Finding a function by what a person typed: its key, or its bare name when that is unique.

Every command and page that takes a function's name resolves it here, so that each says
the same thing about a name it does not know ("did you mean ...") or that names more than
one function.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from tuner.domain.model import FunctionRef


class UnknownFunction(LookupError):
    """No function has that name or key; the message suggests the closest ones."""


class AmbiguousFunction(LookupError):
    """A bare name that several functions share; the message lists their keys."""


def function_key(name: str, keys: Iterable[str]) -> str:
    """The key of the function ``name`` names: a key as it is, or a bare name that is unique.

    Raises :class:`UnknownFunction` (with "did you mean") or :class:`AmbiguousFunction`.
    """
    known = sorted(set(keys))
    if name in known:
        return name
    named = [k for k in known if FunctionRef.parse(k).name == name]
    if len(named) == 1:
        return named[0]
    if named:
        raise AmbiguousFunction(
            f"{name!r} names {len(named)} functions: use one of {', '.join(named)}"
        )
    raise UnknownFunction(f"no function {name!r}{did_you_mean(name, known)}")


def did_you_mean(name: str, keys: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` with the closest names or keys, or ``""`` without any."""
    candidates = {k: k for k in keys}
    candidates.update({FunctionRef.parse(k).name: k for k in list(candidates)})
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"
