"""Benchmark of the operator's safety state in the cluster (a TuningPolicy's status.changes).

Against KMock's emulated API server on 127.0.0.1, through the operator's
:class:`MirroredStore` over a SQLite store: the time one change adds for its cluster
writes (intent before, settled after, one judged window, the verdict): how many, and
how long they take; the size of the status holding the most changes kept (100, with
facts as a Kubernetes cycle records them); and the time a new leader takes to import
them.  Targets: at most 4 writes per change, a status far below etcd's 1.5 MB object
limit (at most 300 kB), an import under 1 s.  The milliseconds per change are mostly
the emulator's: it merges each patch into a stored copy of the whole, growing object.

Run: ``python bench/bench_cluster_state.py [--quick] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "providers" / "kubernetes")]

from kube_emulation import EmulatorThread  # noqa: E402

from operators.cluster_state import ClusterStateMirror  # noqa: E402
from operators.mirrored_store import MirroredStore  # noqa: E402
from tuner.domain.decisions import Decision, Intent  # noqa: E402
from tuner.domain.lifecycle import IntentState, State, Verdict  # noqa: E402
from tuner.domain.model import Change, FunctionRef, Knob, Mode, Severity  # noqa: E402
from tuner.providers.kubernetes.api import KubeApi  # noqa: E402
from tuner.store.audit import SqliteStore  # noqa: E402

NAMESPACE = "bench"
POLICY = f"/apis/tuner.dev/v1alpha1/namespaces/{NAMESPACE}/tuningpolicies/fleet"


def facts(i: int) -> dict[str, Any]:
    """Facts of the size a Kubernetes cycle records (about 40 values and 3 dependencies)."""
    numbers = {f"fact_{k}": float(i * k) + 0.125 for k in range(36)}
    numbers.update(invocations=120.0, ooms=3.0, oom_rate=0.025, peak_memory_mb=251.5)
    dependencies = {
        name: {"calls": 40.0, "errors": 1.0, "error_rate": 0.025, "latency_p95_ms": 12.5}
        for name in ("orders-db", "payments-api", "cache")
    }
    return {**numbers, "dependencies": dependencies}


def change(i: int, now: float) -> Decision:
    return Decision(
        id=f"{i:032x}",
        time=now - 3600 + i,
        rule="oom",
        action="more-memory",
        ref=FunctionRef("kubernetes", f"deployment.api-{i}", NAMESPACE),
        severity=Severity.CRITICAL,
        mode=Mode.APPLY,
        state=State.APPLYING,
        verdict=Verdict.APPLY,
        facts=facts(i),
        change=Change(Knob.MEMORY_MB, 256, 512),
        summary=f"api-{i}: 3 OOM kills in the window: memory_mb 256 -> 512",
    )


def run(changes: int) -> dict[str, float]:
    cluster = EmulatorThread().start()
    kube = KubeApi(cluster.url)
    kube.create(
        f"/apis/tuner.dev/v1alpha1/namespaces/{NAMESPACE}/tuningpolicies",
        {
            "apiVersion": "tuner.dev/v1alpha1",
            "kind": "TuningPolicy",
            "metadata": {"name": "fleet", "namespace": NAMESPACE},
            "spec": {},
        },
    )
    try:
        with tempfile.TemporaryDirectory() as folder:
            writes: list[int] = []
            mirror = ClusterStateMirror(kube, NAMESPACE, "fleet", on_write=writes.append)
            leader = MirroredStore(SqliteStore(Path(folder) / "a.db"), mirror)
            now = time.time()
            start = time.perf_counter()
            for i in range(changes):
                decision = change(i, now)
                assert decision.change is not None
                intent = Intent(f"i{i}", decision.id, decision.ref, (decision.change,), now)
                leader.begin_intent(intent, decision)
                applied = decision.advance(State.APPLIED)
                leader.finish_intent(intent.id, IntentState.DONE, applied)
                leader.record(replace(applied, judged_windows=1))
                if i % 2:
                    leader.record(replace(applied, judged_windows=2).advance(State.IMPROVED))
            per_change_ms = (time.perf_counter() - start) * 1000 / changes
            stored = (kube.get(POLICY).get("status") or {}).get("changes") or {}
            status_bytes = len(json.dumps(stored, separators=(",", ":")))
            follower = MirroredStore(SqliteStore(Path(folder) / "b.db"), mirror)
            start = time.perf_counter()
            restored = follower.restore()
            restore_ms = (time.perf_counter() - start) * 1000
            pending = len(follower.pending_verification())
    finally:
        kube.close()
        cluster.stop()
    return {
        "changes": float(changes),
        "writes_per_change": round(len(writes) / changes, 2),
        "writes_ms_per_change": round(per_change_ms, 2),
        "status_bytes": float(status_bytes),
        "status_bytes_per_change": round(status_bytes / changes, 1),
        "restore_ms": round(restore_ms, 1),
        "restored": float(restored),
        "pending_after_restore": float(pending),
    }


def main() -> None:
    """Print the figures (and write them as JSON when asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 changes instead of 100")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures = run(20 if args.quick else 100)
    print(f"changes kept in status.changes: {figures['changes']:.0f}")
    print(
        f"cluster writes per change: {figures['writes_per_change']:.1f}  (target <= 4), "
        f"{figures['writes_ms_per_change']:.0f} ms on the emulator"
    )
    print(
        f"status size: {figures['status_bytes'] / 1000:.1f} kB, "
        f"{figures['status_bytes_per_change']:.0f} B per change  (target <= 300 kB at 100)"
    )
    print(
        f"new leader's import: {figures['restore_ms']:.0f} ms for {figures['restored']:.0f} "
        f"changes, {figures['pending_after_restore']:.0f} pending verification  "
        "(target <= 1000 ms)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
