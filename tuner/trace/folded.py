"""Folded stacks (``a;b;c 42``, the format flame graph tools read) and the hottest paths.

CPU and wall-time profiles fold the sampled call trees of traces, weighted by each
frame's own time in microseconds; memory profiles fold the allocation sites that held
memory at the peak, weighted in kilobytes, plus the allocation that failed, if any.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tuner.trace.model import CallNode, Trace

Folded = Mapping[str, int]
"""Stack (frames joined by ``;``, outermost first) -> weight."""

KINDS = ("cpu", "wall", "memory")


def _clean(label: str) -> str:
    """A frame label without the characters the folded format reserves."""
    return label.replace(";", ":").replace("\n", " ")


def fold_tree(tree: CallNode, kind: str = "wall", prefix: tuple[str, ...] = ()) -> Counter[str]:
    """Folded stacks of one call tree: each frame's own time (µs) under its full path."""
    folded: Counter[str] = Counter()
    for path, node in tree.walk():
        own = node.self_ms(kind)
        weight = round(own * 1000)
        if weight <= 0:
            continue
        frames = [*prefix, *(_clean(p.frame.label) for p in path), _clean(node.frame.label)]
        folded[";".join(frames)] += weight
    return folded


def fold_memory(trace: Trace) -> Counter[str]:
    """Folded stacks of the memory one trace held at its peak (KB), and its failed allocation."""
    folded: Counter[str] = Counter()
    memory = trace.memory
    if memory is None:
        return folded
    root = _clean(trace.function)
    for site in memory.sites:
        stack = site.stack or (f"{site.file}:{site.line}",)
        weight = max(1, round(site.size_mb * 1024)) if site.size_mb > 0 else 0
        if weight > 0:
            folded[";".join([root, *(_clean(s) for s in stack)])] += weight
    failed = memory.failed
    if failed is not None and failed.size_mb:
        label = f"MemoryError: {failed.kind or 'allocation'} ({failed.file}:{failed.line})"
        folded[f"{root};{_clean(label)}"] += round(failed.size_mb * 1024)
    return folded


def fold(traces: Iterable[Trace], kind: str = "wall") -> Counter[str]:
    """Folded stacks over several traces of one function.

    ``cpu`` and ``wall`` add the call trees up; ``memory`` takes, among the traces whose
    allocations were followed, the one that needed the most memory (adding peaks of
    different invocations would mean nothing).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown profile kind {kind!r} (one of {', '.join(KINDS)})")
    traces = list(traces)
    if kind == "memory":
        profiled = [t for t in traces if t.memory and (t.memory.sites or t.memory.failed)]
        worst = max(profiled, key=_memory_need, default=None)
        return fold_memory(worst) if worst is not None else Counter()
    folded: Counter[str] = Counter()
    for trace in traces:
        if trace.tree is not None:
            folded.update(fold_tree(trace.tree, kind, (_clean(trace.function),)))
    return folded


def _memory_need(trace: Trace) -> float:
    memory = trace.memory
    if memory is None:
        return -1.0
    return memory.need_mb if memory.need_mb is not None else memory.peak_mb


def render_folded(folded: Folded) -> str:
    """The folded-stacks text: one ``stack weight`` line per stack, sorted."""
    return "".join(f"{stack} {weight}\n" for stack, weight in sorted(folded.items()))


def parse_folded(text: str) -> dict[str, int]:
    """Read folded-stacks text; raise ValueError naming the line for a malformed one."""
    folded: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        stack, _, weight = line.rpartition(" ")
        if not stack or not weight.isdigit():
            raise ValueError(f"line {number}: not 'frame;frame weight': {line!r}")
        folded[stack] = folded.get(stack, 0) + int(weight)
    return folded


@dataclass(frozen=True, slots=True)
class HotPath:
    """One stack with its share of the profile's total weight."""

    stack: tuple[str, ...]
    weight: int
    share: float


def hottest(folded: Folded, limit: int = 10) -> list[HotPath]:
    """The heaviest stacks, heaviest first."""
    total = sum(folded.values())
    if not total:
        return []
    ranked = sorted(folded.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [HotPath(tuple(stack.split(";")), weight, weight / total) for stack, weight in ranked]
