"""Split and merge (map-reduce): a payload too large for one invocation, done in parts.

The handler declares how its event splits: by a list field (``@split("pages")``: part
``i`` gets the event with the ``i``-th contiguous slice of that list) or by a function
``by(event, parts) -> [event, ...]``.  With ``TUNER_FAN_OUT`` above 1 (every event in
that many parts), or an event larger than ``TUNER_SPLIT_ABOVE_KB`` (in parts of about that
size), the invocation that receives the event splits it, runs each part as its own
invocation of the same function, in parallel, and merges their results (``merge``, else
:func:`merge_results`); each part runs the handler on its share.  A part never splits
again.  If a part fails, the invocation raises :class:`SplitFailed`, naming how.

Example::

    from tuner_handler import split

    @split("pages")
    def handler(event, context):
        return {"pages": len(event["pages"]), "words": count_words(event["pages"])}
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from numbers import Number
from typing import Any

from tuner_handler.envelopes import opened_part, part_envelope
from tuner_handler.outcomes import Refused
from tuner_handler.platforms import platform_of
from tuner_handler.settings import SUPPORTS_ATTRIBUTE, fan_out, split_above_kb

Handler = Callable[[Any, Any], Any]
Splitter = Callable[[Any, int], Sequence[Any]]
Merger = Callable[[list[Any]], Any]


class SplitFailed(Exception):
    """A part of a split invocation did not succeed (or the parts could not be run)."""


def slices(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``items`` in at most ``parts`` contiguous, nearly equal, non-empty slices."""
    parts = max(1, min(parts, len(items)))
    size, rest = divmod(len(items), parts)
    out, begin = [], 0
    for index in range(parts):
        end = begin + size + (1 if index < rest else 0)
        out.append(list(items[begin:end]))
        begin = end
    return out


def payload_kb(event: Any) -> float:
    """The size of ``event`` in KB: its JSON encoding's (a value JSON cannot hold, its text)."""
    return len(json.dumps(event, default=str).encode()) / 1024.0


def parts_for(event: Any) -> int:
    """How many parts ``event`` is split into: ``fan_out``, or more where it is large."""
    parts = fan_out()
    above = split_above_kb()
    if above > 0:
        parts = max(parts, math.ceil(payload_kb(event) / above))
    return parts


def by_field(name: str) -> Splitter:
    """A splitter that slices the list in ``event[name]`` (the rest of the event is kept)."""

    def split_event(event: Any, parts: int) -> list[Any]:
        """One event per slice of the list field."""
        items = event.get(name) if isinstance(event, dict) else None
        if not isinstance(items, list):
            return [event]
        return [{**event, name: chunk} for chunk in slices(items, parts)]

    return split_event


def merge_results(results: list[Any]) -> Any:
    """Merge the parts' results in order: lists are joined, numbers added, mappings merged
    key by key (recursively); equal values stay.  Anything else needs a ``merge`` of its own.
    """
    if all(isinstance(r, list) for r in results):
        return [item for r in results for item in r]
    if all(isinstance(r, Number) and not isinstance(r, bool) for r in results):
        return sum(results)
    if all(isinstance(r, dict) for r in results):
        keys = list(dict.fromkeys(k for r in results for k in r))
        return {k: merge_results([r[k] for r in results if k in r]) for k in keys}
    if all(r == results[0] for r in results):
        return results[0]
    kinds = sorted({type(r).__name__ for r in results})
    raise TypeError(f"cannot merge results of {', '.join(kinds)}: give split(..., merge=...)")


def split(by: str | Splitter, *, merge: Merger | None = None) -> Callable[[Handler], Handler]:
    """Let ``handler(event, context)`` run on parts of its event, in parallel, when asked to.

    ``by``: the name of a list field of the event, or a function of the event and the
    number of parts giving the parts' events.  ``merge``: a function of the parts' results
    (in order) giving the result; :func:`merge_results` when not given.
    """
    splitter = by_field(by) if isinstance(by, str) else by
    merger = merge or merge_results

    def decorate(handler: Handler) -> Handler:
        """Wrap one handler."""
        if getattr(handler, SUPPORTS_ATTRIBUTE, None):
            raise TypeError("a handler takes one remedy: handover or split, not both")

        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            """Run the whole event, one part, or the parts in parallel and merge them."""
            own, position = opened_part(event)
            if position is not None:
                return handler(own, context)
            parts = parts_for(event)
            platform = platform_of(context) if parts > 1 else None
            events = list(splitter(event, parts)) if platform is not None else []
            if platform is None or len(events) < 2:
                return handler(event, context)
            envelopes = [part_envelope(i, len(events), e) for i, e in enumerate(events)]
            del events
            try:
                outcomes = platform.run_parts(context, envelopes)
            except Refused as error:
                raise SplitFailed(str(error)) from None
            failed = [(i, o) for i, o in enumerate(outcomes) if o.outcome != "ok"]
            if failed:
                index, first = failed[0]
                raise SplitFailed(
                    f"{len(failed)} of {len(outcomes)} parts failed; part {index}:"
                    f" {first.outcome}: {first.error}"
                )
            return merger([o.result for o in outcomes])

        setattr(run, SUPPORTS_ATTRIBUTE, "split")
        return run

    return decorate
