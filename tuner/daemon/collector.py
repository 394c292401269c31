"""The cyclic garbage collector, sized for a loop that builds and drops many objects per cycle.

A cycle builds a few dictionaries of facts per function, and a provider builds each
function's window; they live until the next cycle replaces them, and reference counting
frees them then.  The collector counts new objects less freed ones, and walks the young
generation whenever that count passes its threshold: with CPython's default (700), and
still with a fixed 50,000, a large fleet's cycle set off collections that walked every
window and fact of the cycle, and carried them into older generations whose
collections walk the whole heap.  At 100,000 functions that was a third of the cycle.

So the young generation is sized to the fleet: :data:`YOUNG_PER_FUNCTION` objects per
function, well above what one cycle keeps alive per function at once (under 10), so a
steady cycle sets off no collection at all.  Nothing is lost: a cycle of references is
still collected, once that many new objects have outlived the cycles that made them,
which bounds the garbage waiting to a few kilobytes per function.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""New objects between young collections, at least (CPython's default is 700)."""
YOUNG_PER_FUNCTION = 20
"""New objects between young collections, per function watched."""


def tune_collector(functions: int = 0) -> None:
    """Raise the young generation's threshold for a fleet of ``functions`` (never lower it)."""
    young, middle, old = gc.get_threshold()
    wanted = max(YOUNG_THRESHOLD, YOUNG_PER_FUNCTION * functions)
    if 0 < young < wanted:  # 0: the collector is off, and stays off
        gc.set_threshold(wanted, middle, old)
