"""The fact reference: every name a rule condition may use, with its type, unit and meaning.

``tuner facts`` prints it; rule files are checked against it; a test checks that every
fact read anywhere is in it.  How facts are built is :mod:`tuner.engine.facts`.
"""

from __future__ import annotations

from collections.abc import Mapping

from tuner.engine.conditions import Type
from tuner.engine.fact_docs import FactDoc
from tuner.engine.shape_facts import SHAPE_EVIDENCE, SHAPE_FACTS

FAILING_DEPENDENCY_ERROR_RATE = 0.5
"""A dependency counts as failing for a function when at least this share of calls fail."""

__all__ = ["EXTRA_FACTS", "FACTS", "FACT_TYPES", "FAILING_DEPENDENCY_ERROR_RATE", "FactDoc"]


FACTS: Mapping[str, FactDoc] = {
    # identity
    "provider": FactDoc(Type.STRING, "", "The provider's name: local, aws, kubernetes."),
    "function": FactDoc(Type.STRING, "", "The function's name."),
    "labels": FactDoc(Type.MAP, "", "The function's labels or tags, e.g. labels.team."),
    "window_s": FactDoc(Type.NUMBER, "s", "Length of the observed window."),
    # traffic and outcomes
    "invocations": FactDoc(Type.NUMBER, "count", "Invocations in the window."),
    "errors": FactDoc(Type.NUMBER, "count", "Invocations that did not succeed, for any reason."),
    "error_rate": FactDoc(Type.NUMBER, "ratio", "errors / invocations."),
    "timeouts": FactDoc(Type.NUMBER, "count", "Invocations stopped at the timeout."),
    "timeout_rate": FactDoc(Type.NUMBER, "ratio", "timeouts / invocations."),
    "ooms": FactDoc(Type.NUMBER, "count", "Invocations killed for running out of memory."),
    "oom_rate": FactDoc(Type.NUMBER, "ratio", "ooms / invocations."),
    "throttles": FactDoc(Type.NUMBER, "count", "Invocations refused for concurrency limits."),
    "cold_starts": FactDoc(Type.NUMBER, "count", "Invocations that started a new worker."),
    "init_errors": FactDoc(
        Type.NUMBER,
        "count",
        "Init phases that failed before the handler ran (import error, crash, no handler); "
        "no memory or timeout change fixes them.",
    ),
    "init_timeouts": FactDoc(Type.NUMBER, "count", "aws: init phases that ran out of time."),
    "evictions": FactDoc(Type.NUMBER, "count", "kubernetes: pods evicted by the kubelet."),
    "evictions_over_request": FactDoc(
        Type.NUMBER, "count", "kubernetes: evictions for memory of pods over their request."
    ),
    "eviction_reason": FactDoc(Type.STRING, "", "kubernetes: what the node was low on."),
    # duration
    "duration_p50_ms": FactDoc(Type.NUMBER, "ms", "Median duration."),
    "duration_p95_ms": FactDoc(Type.NUMBER, "ms", "95th percentile duration."),
    "duration_p99_ms": FactDoc(Type.NUMBER, "ms", "99th percentile duration."),
    "duration_max_ms": FactDoc(Type.NUMBER, "ms", "Longest duration."),
    "timeout_ms": FactDoc(Type.NUMBER, "ms", "The configured timeout (null where none)."),
    "duration_timeout_ratio": FactDoc(
        Type.NUMBER, "ratio", "duration_p99_ms / timeout_ms: how close the tail is to the timeout."
    ),
    # memory
    "memory_mb": FactDoc(Type.NUMBER, "MB", "The configured memory."),
    "peak_memory_mb": FactDoc(Type.NUMBER, "MB", "Highest memory used by one invocation."),
    "memory_utilisation": FactDoc(Type.NUMBER, "ratio", "peak_memory_mb / memory_mb."),
    "cpu_scales_with_memory": FactDoc(
        Type.BOOL, "", "True where more memory also buys CPU (AWS Lambda)."
    ),
    # granularity and caching
    "batch_size": FactDoc(Type.NUMBER, "records", "Records per invocation (null: no such knob)."),
    "fan_out": FactDoc(
        Type.NUMBER, "count", "Parallel parts a payload is split into (null: none)."
    ),
    "split_above_kb": FactDoc(
        Type.NUMBER,
        "KB",
        "Size above which a payload is split into parts of about that size (tuner_handler); "
        "0 is off, null: the function cannot split.",
    ),
    "concurrency": FactDoc(Type.NUMBER, "count", "Requests one instance serves at once."),
    "cache_ttl_s": FactDoc(Type.NUMBER, "s", "Cache time-to-live; 0 is off, null: no cache knob."),
    "cache_enabled": FactDoc(Type.BOOL, "", "True when the cache is on."),
    "handover_s": FactDoc(
        Type.NUMBER,
        "s",
        "Handover margin: seconds before the timeout at which an invocation hands its state "
        "to a fresh one (tuner_handler); 0 is off, null: the function has no such setting.",
    ),
    # dependencies
    "dependencies": FactDoc(
        Type.MAP,
        "",
        "Per dependency name: {calls, errors, error_rate, latency_p95_ms}, "
        'e.g. dependencies["orders-db"].error_rate.',
    ),
    "dependency_calls": FactDoc(Type.NUMBER, "count", "Calls to all dependencies."),
    "dependency_errors": FactDoc(Type.NUMBER, "count", "Failed calls to all dependencies."),
    "dependency_error_rate": FactDoc(
        Type.NUMBER, "ratio", "The highest error rate of any one dependency."
    ),
    "dependency_latency_p95_ms": FactDoc(
        Type.NUMBER, "ms", "The highest p95 call latency of any one dependency."
    ),
    "worst_dependency": FactDoc(
        Type.STRING, "", "The dependency with the highest error rate (then latency)."
    ),
    # fleet
    "fleet_functions": FactDoc(Type.NUMBER, "count", "Functions observed in this cycle."),
    "dependency_failing_functions": FactDoc(
        Type.NUMBER,
        "count",
        "How many functions in the fleet see this function's worst dependency failing "
        f"(error rate >= {FAILING_DEPENDENCY_ERROR_RATE}); 0 when it is not failing here.",
    ),
    "extra": FactDoc(
        Type.MAP, "", "Provider-specific measurements, e.g. extra.records_per_invocation."
    ),
    # traces (where the provider traces invocations: local)
    "traced_peak_memory_mb": FactDoc(
        Type.NUMBER,
        "MB",
        "The most memory one traced invocation needed: its peak, or for one that ran out, "
        "what it held plus the allocation that failed (null: no traced invocation).",
    ),
    "traced_failed_allocation_mb": FactDoc(
        Type.NUMBER, "MB", "The largest allocation a traced invocation failed to make."
    ),
    "cpu_time_share": FactDoc(Type.NUMBER, "ratio", "Share of the mean duration on CPU."),
    "measured_excess_cost": FactDoc(
        Type.NUMBER, "ratio", "Cost per invocation over the cheapest size measured's, less 1."
    ),
    "measured_trial_mb": FactDoc(Type.NUMBER, "MB", "The next size to try (null: none)."),
    "evidence": FactDoc(
        Type.MAP,
        "",
        "Text from traces: evidence.hot_path (where the time went), evidence.hot_site (the "
        "code it was in at the timeout, else the busiest), evidence.allocation_site (what held "
        "or failed to get memory), evidence.allocation_grows_with (the names its size was "
        "read from), evidence.trace_ids, evidence.slow_dependency (the dependency holding "
        "the time, from the window's topology)"
        + "".join(f", evidence.{name} ({doc})" for name, doc in SHAPE_EVIDENCE.items())
        + ".",
    ),
}

FACT_TYPES: Mapping[str, Type] = {name: doc.type for name, doc in FACTS.items()}

EXTRA_FACTS: Mapping[str, FactDoc] = {
    # local host
    "records_per_invocation": FactDoc(
        Type.NUMBER, "records", "local: records per batched invocation."
    ),
    "duration_per_record_ms": FactDoc(Type.NUMBER, "ms", "local: duration per record of a batch."),
    "cache_hits": FactDoc(Type.NUMBER, "count", "local: cache hits in the window."),
    "cache_misses": FactDoc(Type.NUMBER, "count", "local: cache misses in the window."),
    "cache_hit_rate": FactDoc(Type.NUMBER, "ratio", "local: hits / (hits + misses)."),
    "init_ms_max": FactDoc(Type.NUMBER, "ms", "local: the longest worker start."),
    "split_share": FactDoc(
        Type.NUMBER,
        "ratio",
        "local: share of the invocations that timed out (of all, when none did) whose event "
        "is a list of two or more items, the only events the host's fan-out splits; 1 where "
        "the handler splits its events itself (tuner_handler's split).",
    ),
    "traced_invocations": FactDoc(
        Type.NUMBER, "count", "local: traced invocations in the window (absent: none)."
    ),
    # handover and split (tuner_handler; docs/remedies.md)
    "supports_handover": FactDoc(
        Type.NUMBER,
        "",
        "local, aws: 1 where the function's code uses tuner_handler's handover (local: its "
        "handler says so when a worker starts; aws: it has TUNER_HANDOVER_S in its environment).",
    ),
    "supports_split": FactDoc(
        Type.NUMBER,
        "",
        "local, aws: 1 where the function's code uses tuner_handler's split (local: its "
        "handler says so; aws: it has TUNER_FAN_OUT in its environment).",
    ),
    "runtime_memory_mb": FactDoc(
        Type.NUMBER,
        "MB",
        "local: resident memory of a worker with its handler loaded, before any invocation "
        "(the part of the need that no split divides); sim: that of a probe's fresh worker.",
    ),
    "chains": FactDoc(Type.NUMBER, "count", "local: chains (handover) that ended in the window."),
    "chains_failed": FactDoc(
        Type.NUMBER,
        "count",
        "local: chains that failed in the window (a link failed after its retries, or asked "
        "for more links than the chain may have).",
    ),
    "chain_links_max": FactDoc(
        Type.NUMBER, "count", "local: invocations of the longest chain that ended in the window."
    ),
    "splits": FactDoc(
        Type.NUMBER, "count", "local: invocations that ran their event in parts (split)."
    ),
    "splits_failed": FactDoc(
        Type.NUMBER, "count", "local: of those, the ones a part failed in (no merged result)."
    ),
    "split_parts_max": FactDoc(Type.NUMBER, "count", "local: the most parts of one split."),
    # AWS Lambda
    "log_reports": FactDoc(Type.NUMBER, "count", "aws: REPORT log lines read for the window."),
    "malformed_log_lines": FactDoc(Type.NUMBER, "count", "aws: log lines that could not be read."),
    "duration_avg_ms": FactDoc(Type.NUMBER, "ms", "aws: CloudWatch's average duration."),
    "concurrent_executions_max": FactDoc(Type.NUMBER, "count", "aws: most concurrent executions."),
    "memory_utilization_pct": FactDoc(
        Type.NUMBER, "percent", "aws: Lambda Insights' memory utilisation."
    ),
    "canary_version": FactDoc(
        Type.NUMBER,
        "version",
        "aws: the published version on trial on the alias (canary); while it is set, every "
        "fact of the window is that version's invocations alone.",
    ),
    "canary_weight": FactDoc(
        Type.NUMBER, "ratio", "aws: the share of the alias's traffic the version on trial gets."
    ),
    # Kubernetes
    "restarts": FactDoc(Type.NUMBER, "count", "kubernetes: container restarts of the pods."),
    "restarts_without_state": FactDoc(
        Type.NUMBER, "count", "kubernetes: restarts whose termination the kubelet lost."
    ),
    "other_container_ooms": FactDoc(
        Type.NUMBER, "count", "kubernetes: OOM kills of init, sidecar or other containers."
    ),
    "backoffs": FactDoc(Type.NUMBER, "count", "kubernetes: BackOff events of the pods."),
    "pods": FactDoc(Type.NUMBER, "count", "kubernetes: pods of the workload."),
    **{name: FACTS[name] for name in ("init_timeouts", "evictions", "evictions_over_request")},
    # sizing evidence (the sim provider reports it all; others what they can measure)
    "payload_kb_max": FactDoc(
        Type.NUMBER, "KB", "Largest payload in the window, of failed invocations too."
    ),
    "memory_mb_per_payload_kb": FactDoc(
        Type.NUMBER, "MB/KB", "How much an invocation's peak memory grows per KB of payload."
    ),
    "memory_base_mb": FactDoc(
        Type.NUMBER, "MB", "Peak memory of an invocation with an empty payload."
    ),
    "worker_start_memory_mb": FactDoc(
        Type.NUMBER, "MB", "Memory of a worker after its first invocation."
    ),
    "memory_growth_mb_per_invocation": FactDoc(
        Type.NUMBER, "MB", "Memory a worker keeps after each invocation (a leak)."
    ),
    "worker_lifetime_invocations": FactDoc(
        Type.NUMBER, "count", "Invocations a worker serves before the platform recycles it."
    ),
    "traced_peak_memory_mb": FactDoc(
        Type.NUMBER,
        "MB",
        "The most memory a traced invocation needed: its peak, or for one killed for "
        "memory, what it held plus the allocation that failed.",
    ),
    "traced_failed_allocation_mb": FactDoc(
        Type.NUMBER, "MB", "The largest allocation a traced invocation failed to make."
    ),
    "probe_peak_memory_mb": FactDoc(
        Type.NUMBER,
        "MB",
        "local, sim: peak of an invocation killed for memory, re-run once at a higher limit "
        "(a probe); kubernetes: peak of a probe pod serving real traffic at a higher limit; "
        "at the probe's limit when it ran out there too.",
    ),
    "probe_memory_mb": FactDoc(
        Type.NUMBER, "MB", "local, sim, kubernetes: the limit the probe ran at."
    ),
    "probe_payload_kb": FactDoc(Type.NUMBER, "KB", "local, sim: the payload size of the probe."),
    "probe_pending": FactDoc(
        Type.NUMBER,
        "",
        "local: 1 from a kill for memory until its probe has measured (at most the probe "
        "policy's wait_s); kubernetes: 1 while a probe pod runs and has measured nothing yet.",
    ),
    "probes": FactDoc(
        Type.NUMBER,
        "count",
        "local: probes behind the window's evidence (those that finished in it, else 1 for "
        "the latest at the memory the function has); kubernetes: 1 with a probe's evidence.",
    ),
    "lookback_peak_memory_mb": FactDoc(
        Type.NUMBER, "MB", "Highest peak of surviving invocations over the lookback."
    ),
    "lookback_duration_avg_ms_min": FactDoc(
        Type.NUMBER, "ms", "Lowest mean duration of a window over the lookback."
    ),
    "lookback_payload_kb_max": FactDoc(Type.NUMBER, "KB", "Largest payload over the lookback."),
    "lookback_days": FactDoc(Type.NUMBER, "days", "Days of history in the lookback."),
    "cpu_time_ms": FactDoc(
        Type.NUMBER, "ms", "CPU time per invocation (Lambda Insights cpu_total_time)."
    ),
    "cheapest_measured_memory_mb": FactDoc(
        Type.NUMBER, "MB", "sim: the size whose successful invocations cost least (no OOM)."
    ),
    "cheapest_measured_cost_ratio": FactDoc(Type.NUMBER, "ratio", "sim: its cost over today's."),
    "measured_below_mb": FactDoc(Type.NUMBER, "MB", "sim: the size measured next below it."),
    "measured_above_mb": FactDoc(Type.NUMBER, "MB", "sim: the size measured next above it."),
    "price_gb_s": FactDoc(Type.NUMBER, "$", "Price of one GB-second of memory."),
    "price_per_request": FactDoc(Type.NUMBER, "$", "Price of one invocation."),
    **SHAPE_FACTS,
}
"""Provider-specific facts, under ``extra`` (e.g. ``extra.cache_hit_rate``), and who produces them."""
