"""Window facts of local functions, computed from the host's recorded invocations."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from tuner.domain.model import DependencyFacts, FunctionRef, WindowFacts
from tuner.domain.stats import percentile
from tuner.providers.local.chain_store import DONE, Chain, Split
from tuner.providers.local.decomposing import SPLIT, Decomposition, Traits
from tuner.providers.local.recording import DependencyCallRecord, InvocationRecord


def window_facts(
    ref: FunctionRef,
    start: float,
    end: float,
    invocations: Sequence[InvocationRecord],
    calls: Sequence[DependencyCallRecord],
) -> WindowFacts:
    """Facts over ``[start, end)`` from that window's invocations and dependency calls."""
    if not invocations:
        return WindowFacts(ref=ref, start=start, end=end, invocations=0)
    durations = [i.duration_ms for i in invocations]
    peaks = [i.peak_memory_mb for i in invocations if i.peak_memory_mb is not None]
    return WindowFacts(
        ref=ref,
        start=start,
        end=end,
        invocations=len(invocations),
        errors=sum(1 for i in invocations if i.outcome != "ok"),
        timeouts=sum(1 for i in invocations if i.outcome == "timeout"),
        ooms=sum(1 for i in invocations if i.outcome == "oom"),
        throttles=0,  # the host queues invocations for a free worker; it never rejects one
        cold_starts=sum(1 for i in invocations if i.cold_start),
        duration_p50_ms=percentile(durations, 50),
        duration_p95_ms=percentile(durations, 95),
        duration_p99_ms=percentile(durations, 99),
        duration_max_ms=max(durations),
        peak_memory_mb=max(peaks) if peaks else None,
        dependencies=dependency_facts(calls),
        extra=extra_facts(invocations),
    )


def dependency_facts(calls: Sequence[DependencyCallRecord]) -> dict[str, DependencyFacts]:
    """Calls, errors and p95 latency per dependency name."""
    by_name: dict[str, list[DependencyCallRecord]] = defaultdict(list)
    for call in calls:
        by_name[call.name].append(call)
    return {
        name: DependencyFacts(
            name=name,
            calls=len(group),
            errors=sum(1 for c in group if c.error),
            latency_p95_ms=percentile([c.latency_ms for c in group], 95),
        )
        for name, group in sorted(by_name.items())
    }


def extra_facts(invocations: Sequence[InvocationRecord]) -> dict[str, float]:
    """Local measurements beyond the common facts.

    ``records_per_invocation`` (mean, batched invocations only), ``duration_per_record_ms``
    (from the batches that finished; absent when none did, because a timed-out batch only
    bounds it from below), ``split_share`` (of the invocations that timed out, else of all,
    the share whose event a fan-out splits: a list of two or more items), ``cache_hits``,
    ``cache_misses``, ``cache_hit_rate`` (when the cache was asked) and ``init_ms_max``
    (slowest cold start).
    """
    extra: dict[str, float] = {}
    batched = [i for i in invocations if i.records]
    if batched:
        extra["records_per_invocation"] = sum(i.records or 0 for i in batched) / len(batched)
        finished = [i for i in batched if i.outcome == "ok"]
        if finished:
            records = sum(i.records or 0 for i in finished)
            extra["duration_per_record_ms"] = sum(i.duration_ms for i in finished) / records
    timed_out = [i for i in invocations if i.outcome == "timeout"]
    judged = timed_out or invocations
    extra["split_share"] = sum(1 for i in judged if (i.records or 0) >= 2) / len(judged)
    hits = sum(i.cache_hits for i in invocations)
    misses = sum(i.cache_misses for i in invocations)
    extra["cache_hits"] = float(hits)
    extra["cache_misses"] = float(misses)
    if hits + misses:
        extra["cache_hit_rate"] = hits / (hits + misses)
    inits = [i.init_ms for i in invocations if i.init_ms is not None]
    if inits:
        extra["init_ms_max"] = max(inits)
    return extra


def remedy_facts(
    traits: Traits | None, chains: Sequence[Chain], splits: Sequence[Split]
) -> dict[str, float]:
    """What a window says of a function's handover and split (tuner_handler).

    ``supports_handover`` / ``supports_split`` (1 where its handler uses them, as its
    latest worker said), ``runtime_memory_mb`` (a worker with its handler loaded: the part
    of the need no split divides); of the chains that ended in the window: ``chains``,
    ``chains_failed``, ``chain_links_max``; of the invocations that ran in parts:
    ``splits``, ``splits_failed`` (a part failed, no merged result), ``split_parts_max``.
    A function that splits its own events has a ``split_share`` of 1.
    """
    extra: dict[str, float] = {}
    if traits is not None:
        for remedy in sorted(traits.supports):
            extra[f"supports_{remedy}"] = 1.0
        if SPLIT in traits.supports:
            extra["split_share"] = 1.0
        if traits.runtime_mb is not None:
            extra["runtime_memory_mb"] = traits.runtime_mb
    if chains:
        extra["chains"] = float(len(chains))
        extra["chains_failed"] = float(sum(1 for c in chains if c.status != DONE))
        extra["chain_links_max"] = float(max(c.links for c in chains))
    if splits:
        extra["splits"] = float(len(splits))
        extra["splits_failed"] = float(sum(1 for s in splits if not s.merged))
        extra["split_parts_max"] = float(max(s.parts for s in splits))
    return extra


def with_remedy_facts(
    windows: Mapping[FunctionRef, WindowFacts], remedies: Decomposition, start: float, end: float
) -> dict[FunctionRef, WindowFacts]:
    """The windows with what each says of its function's handover and split (two queries)."""
    names = [ref.name for ref in windows]
    chains: dict[str, list[Chain]] = defaultdict(list)
    for chain in remedies.store.ended(names, start, end):
        chains[chain.function].append(chain)
    splits: dict[str, list[Split]] = defaultdict(list)
    for split in remedies.store.splits(names, start, end):
        splits[split.function].append(split)
    out = {}
    for ref, window in windows.items():
        found = remedy_facts(remedies.traits(ref.name), chains[ref.name], splits[ref.name])
        out[ref] = replace(window, extra={**window.extra, **found}) if found else window
    return out
