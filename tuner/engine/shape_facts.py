"""Facts about the application's shape: who calls a function, and how far its data is.

They are provider facts (under ``extra``), part of the fact reference
(:mod:`tuner.engine.reference` merges them in).  The local host draws the calls between
functions from its traces (the caller's span for a call against the callee's own
duration) and the distance of a dependency from ``dependencies.yaml``; Kubernetes draws
distance from zones and client- against server-side latency; AWS from where a function's
data stores are.
"""

from __future__ import annotations

from collections.abc import Mapping

from tuner.engine.conditions import Type
from tuner.engine.fact_docs import FactDoc

_N, _R, _MS, _MB = Type.NUMBER, "ratio", "ms", "MB"

SHAPE_FACTS: Mapping[str, FactDoc] = {
    # the calls a function gets from other functions (local: from traces)
    "callers": FactDoc(
        _N, "count", "local: functions whose traced invocations called this one in the window."
    ),
    "caller_share": FactDoc(
        _N,
        _R,
        "local: share of its invocations its callers made (estimated from their traces; "
        "below 1 when it is also invoked from outside).",
    ),
    "calls_per_min": FactDoc(
        _N, "count", "local: calls per minute from its callers (estimated from their traces)."
    ),
    "calls_per_caller_invocation": FactDoc(
        _N, "count", "local: calls it gets per invocation of its caller."
    ),
    "invoke_overhead_ms": FactDoc(
        _N,
        _MS,
        "local: mean time per call its caller waits beyond this function's own duration "
        "(the invocation hop: a worker hop, a cold start).",
    ),
    "invoke_overhead_share": FactDoc(
        _N, _R, "local: that overhead's share of the time its caller waits for it."
    ),
    "own_duration_ms": FactDoc(_N, _MS, "local: its mean own duration per call from its callers."),
    "caller_p95_ms": FactDoc(_N, _MS, "local: p95 duration of its caller (the busiest one)."),
    "caller_memory_mb": FactDoc(_N, _MB, "local: the memory its caller is configured with."),
    "caller_peak_memory_mb": FactDoc(
        _N, _MB, "local: the most memory one invocation of its caller used in the window."
    ),
    "pair_mb_s_per_call": FactDoc(
        _N,
        "MB*s",
        "local: memory-seconds its caller and it were billed per call (a fused function's "
        "own are inside its caller's).",
    ),
    "fused_memory_share": FactDoc(
        _N,
        _R,
        "for a fused function, the share of its caller's traced peak that its code held "
        "(the memory flame graph's path through it); no provider measures it yet.",
    ),
    "fused_memory_mb": FactDoc(
        _N, _MB, "what its code held at its caller's traced peak, while fused (not measured yet)."
    ),
    # one code path holding most of a function's memory (local: the memory flame graph of
    # its traces, where allocations were followed)
    "memory_path_share": FactDoc(
        _N, _R, "local: share of the traced peak held below one code path of the function."
    ),
    "memory_path_mb": FactDoc(_N, _MB, "local: what that code path held at the traced peak."),
    "memory_rest_mb": FactDoc(
        _N, _MB, "local: the traced peak without that code path (what the rest needs)."
    ),
    "memory_path_invocations_share": FactDoc(
        _N, _R, "local: share of the traced invocations whose memory went down that path."
    ),
    # how far a function's data is
    "distance_share": FactDoc(
        _N,
        _R,
        "local: share of its farthest dependency's median latency that is the network "
        "distance dependencies.yaml declares; kubernetes: share of a dependency's p95 seen "
        "by the function (client side) that its server side does not account for.",
    ),
    "dependency_distance_ms": FactDoc(
        _N, _MS, "local: the declared network distance of that dependency."
    ),
    "replica_distance_ms": FactDoc(
        _N, _MS, "local: the distance of its nearest declared replica (absent: none is nearer)."
    ),
    "zone_mismatch": FactDoc(
        _N,
        "",
        "kubernetes: 1 when none of the function's pods run in a zone where its farthest "
        "dependency's Service has ready endpoints.",
    ),
    "far_data_stores": FactDoc(
        _N,
        "count",
        "aws: data stores the function names (DynamoDB tables, RDS instances, S3 buckets) "
        "in another region than the function, or an RDS instance in a zone none of its "
        "subnets is in.",
    ),
}
"""The shape facts, under ``extra`` (e.g. ``extra.calls_per_min``)."""

SHAPE_EVIDENCE: Mapping[str, str] = {
    "caller": "the one caller of a private function, from traces",
    "far_dependency": "the dependency held back by distance and where it is",
    "nearest_replica": "local: the replica the function can read from instead",
    "memory_path": "the code path holding most of the memory, as function (file:line)",
    "far_data": "aws: each data store in another region or zone, with the facts behind it",
}
"""The text evidence the shape facts come with (``evidence.caller`` ...)."""
