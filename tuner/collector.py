"""The cyclic garbage collector, set for a loop that builds and drops many objects per cycle.

A cycle builds a few dictionaries of facts per function, keeps those of the functions
with findings to the end of the cycle (in their decisions) and drops them all when the
cycle is recorded; reference counting frees them.  The collector, by contrast, walks its
young generation whenever enough new objects are alive: CPython's default threshold (a
young collection every 700 new objects) runs hundreds of collections a cycle over a
large fleet and carries the objects that live through the cycle (its windows, facts and
decisions) into the old generation, whose collection walks the whole heap.  Even with a
young generation of 50,000 objects, a large fleet's cycle filled it several times, each
collection walking facts that were all still in use (at 100,000 functions, about a fifth
of a cycle's CPU), and finding nothing to free.

So the collector is paused while a cycle runs (:func:`paused`) and works between cycles,
when the cycle's objects are gone; its young generation is 50,000 objects for the rest of
the process (the dashboard, the scheduler).  Nothing is lost: a cycle of references made
during a cycle is collected after it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000
"""New objects between young collections (CPython's default is 700)."""


def tune_collector() -> None:
    """Raise the young generation's threshold to :data:`YOUNG_THRESHOLD` (never lower it)."""
    young, middle, old = gc.get_threshold()
    if 0 < young < YOUNG_THRESHOLD:  # 0: the collector is off, and stays off
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)


@contextmanager
def paused() -> Iterator[None]:
    """Hold automatic collections for the block; on again after it, when it was on before."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
