"""speedscope JSON (https://www.speedscope.app) from folded stacks.

One ``sampled`` profile: every folded stack is a sample (frame indexes, outermost first)
weighted by its folded weight.  pyinstrument's ``SpeedscopeRenderer`` only renders
pyinstrument's own sessions, and the worker's sampler is not pyinstrument (a worker must
run on the standard library alone), so the few lines of this format are written here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"
_LABEL = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


def _frame(label: str) -> dict[str, Any]:
    """A speedscope frame from a ``function (file:line)`` label."""
    match = _LABEL.match(label)
    if match is None:
        return {"name": label}
    return {"name": match["name"], "file": match["file"], "line": int(match["line"])}


def render_speedscope(
    folded: Mapping[str, int], *, name: str, unit: str = "microseconds"
) -> dict[str, Any]:
    """A speedscope file holding the folded stacks as one sampled profile.

    ``unit`` is one of speedscope's value units (``microseconds``, ``bytes``, ``none`` ...).
    """
    index: dict[str, int] = {}
    frames: list[dict[str, Any]] = []
    samples: list[list[int]] = []
    weights: list[int] = []
    for stack, weight in sorted(folded.items()):
        if weight <= 0:
            continue
        sample = []
        for label in stack.split(";"):
            if label not in index:
                index[label] = len(frames)
                frames.append(_frame(label))
            sample.append(index[label])
        samples.append(sample)
        weights.append(weight)
    return {
        "$schema": SCHEMA_URL,
        "name": name,
        "exporter": "tuner",
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled",
                "name": name,
                "unit": unit,
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
        ],
    }
