"""The cyclic garbage collector, set for a loop that builds and drops many objects per cycle.

A cycle builds a few dictionaries of facts per function and drops them when it has
judged the function; reference counting frees them.  CPython's default threshold (a
young collection every 700 new objects) runs hundreds of collections a cycle over a
large fleet, and the objects that live through the cycle (its windows and decisions)
are carried into the old generation, whose collection walks the whole heap: at 10,000
functions about a quarter of a cycle's CPU went to the collector.  A larger young
generation lets most of them die young, at no cost in what is freed (a cycle of
references is still collected, a little later).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""New objects between young collections (CPython's default is 700)."""


def tune_collector() -> None:
    """Raise the young generation's threshold to :data:`YOUNG_THRESHOLD` (never lower it)."""
    young, middle, old = gc.get_threshold()
    if 0 < young < YOUNG_THRESHOLD:  # 0: the collector is off, and stays off
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)
