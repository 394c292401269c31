"""Far dependencies and their nearer replicas: where a function's calls go, and distance facts.

``dependencies.yaml`` may declare a dependency's network ``distance_ms`` (paid on every
call) and ``replicas``: other dependencies holding a copy of its data.  A function whose
``near_replica`` is 1 has its calls to each dependency with a nearer replica sent to the
nearest one; the handler still names the dependency, and the host records the calls under
its name, so its latency before and after the switch compare.  The facts say how much of
a dependency's measured latency is its declared distance (``extra.distance_share``) and
whether a nearer replica exists (``extra.replica_distance_ms``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from tuner.domain.model import FunctionConfig, WindowFacts
from tuner.domain.stats import percentile
from tuner.providers.local.recording import DependencyCallRecord
from tuner.providers.local.specs import DependencySpec


def nearest_replica(specs: Mapping[str, DependencySpec], name: str) -> DependencySpec | None:
    """The declared replica of ``name`` nearest to the functions, if one is nearer than it."""
    spec = specs.get(name)
    if spec is None:
        return None
    replicas = [specs[r] for r in spec.replicas if r in specs]
    nearest = min(replicas, key=lambda r: (r.distance_ms, r.name), default=None)
    return nearest if nearest is not None and nearest.distance_ms < spec.distance_ms else None


def routed(
    urls: Mapping[str, str], specs: Mapping[str, DependencySpec], near: bool
) -> dict[str, str]:
    """Each dependency name with the URL a function's calls go to: its nearest replica's when
    ``near`` and one is nearer, else its own."""
    out = dict(urls)
    if near:
        for name in urls:
            replica = nearest_replica(specs, name)
            if replica is not None and replica.name in urls:
                out[name] = urls[replica.name]
    return out


def called(specs: Mapping[str, DependencySpec], name: str, near: bool) -> DependencySpec | None:
    """The dependency a function's calls to ``name`` reach (a replica when switched)."""
    replica = nearest_replica(specs, name) if near else None
    return replica or specs.get(name)


def with_distance_facts(
    window: WindowFacts,
    config: FunctionConfig,
    calls: Sequence[DependencyCallRecord],
    specs: Mapping[str, DependencySpec],
) -> WindowFacts:
    """The window with the distance facts of its farthest dependency (unchanged without one).

    The distance is what ``dependencies.yaml`` declares for what the calls reach now; the
    latency is the median the host measured for them in this window.
    """
    if window.empty:
        return window
    latencies: dict[str, list[float]] = defaultdict(list)
    for call in calls:
        if not call.error:
            latencies[call.name].append(call.latency_ms)
    near = bool(config.near_replica)
    far: tuple[float, str, DependencySpec, float] | None = None
    for name, measured in latencies.items():
        reached = called(specs, name, near)
        median = percentile(measured, 50)
        if reached is None or not reached.distance_ms or not median:
            continue
        if far is None or reached.distance_ms > far[0]:
            far = (reached.distance_ms, name, reached, median)
    if far is None:
        return window
    distance, name, reached, median = far
    extra = {
        **window.extra,
        "distance_share": min(1.0, distance / median),
        "dependency_distance_ms": distance,
    }
    via = f" (through its replica {reached.name})" if reached.name != name else ""
    evidence = {
        **window.evidence,
        "far_dependency": (
            f"{name}{via}: {distance:g} ms of its {median:.0f} ms median latency is the network "
            "distance dependencies.yaml declares"
        ),
    }
    replica = nearest_replica(specs, name)
    if replica is not None and replica.distance_ms < distance:
        extra["replica_distance_ms"] = replica.distance_ms
        evidence["nearest_replica"] = replica.name
    return replace(window, extra=extra, evidence=evidence)
