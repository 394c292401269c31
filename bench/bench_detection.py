"""Benchmark of failure detection on public log lines and Kubernetes objects nobody here wrote.

The corpus (``tests/corpus``) holds Lambda log lines of every managed runtime and of
custom runtimes, and Kubernetes pod statuses and Events, each with the address it was
quoted at.  It is split by that address; the signatures were written from the fitting
part, and this benchmark scores the held-out part: precision and recall per kind.

Targets: precision and recall at least 0.95 for OOM, timeout and init failure on the
held-out Lambda lines (the exit status is 1 when one is missed).
Run: ``python -m bench.bench_detection [--quick] [--json FILE]`` (both modes read the
whole corpus, which takes well under a second).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from tests.corpus import KubeItem, LambdaLine, kubernetes_items, lambda_lines
from tests.providers.aws.cloudwatch_terms import matches
from tuner.providers.aws.reports import FILTER_PATTERN, summarize
from tuner.providers.kubernetes import evictions, podevents, signals

LAMBDA_KINDS = ("oom", "timeout", "init_timeout", "init_failure")
KUBERNETES_KINDS = ("oom", "eviction", "node_oom", "restart_unknown", "backoff")
TARGETS = ("oom", "timeout", "init_failure")
BAR = 0.95
T = TypeVar("T")


def lambda_kind(line: LambdaLine) -> str:
    """What tuner reads in one Lambda line: a failure kind, or none."""
    summary = summarize([line.text])
    for kind, count in (
        ("oom", summary.ooms),
        ("timeout", summary.timeouts),
        ("init_timeout", summary.init_timeouts),
        ("init_failure", summary.init_errors),
    ):
        if count:
            return kind
    return "none"


def _bystander(event: dict[str, Any]) -> dict[str, Any]:
    """A pod that ran on the event's node: a node OOM must not be pinned on it by guess."""
    node = (event.get("source") or {}).get("host") or (event.get("involvedObject") or {}).get(
        "name", ""
    )
    return {
        "metadata": {"name": "web-7c9d8f6b5d-x2x9q", "uid": "0f2e4c1a-6b8d-4e2f-9a3c"},
        "spec": {"nodeName": node, "containers": [{"name": "web"}]},
    }


def kubernetes_kind(item: KubeItem) -> str:
    """What tuner reads in one pod status or Event: a kind, or none."""
    if item.event is not None:
        event = item.event
        if evictions.event_eviction(event):
            return "eviction"
        if podevents.is_oom(event):
            involved = event.get("involvedObject") or {}
            named = [{"metadata": {"name": involved.get("name"), "uid": involved.get("uid")}}]
            candidates = named if involved.get("kind") == "Pod" else [_bystander(event)]
            return "oom" if podevents.attributed_pod(event, candidates) else "node_oom"
        return "backoff" if event.get("reason") == podevents.BACKOFF else "none"
    pod = copy.deepcopy(item.pod or {})
    if evictions.pod_eviction(pod):
        return "eviction"
    statuses = [status for _, status in signals.container_statuses(pod)]
    if any(signals.oom_terminations(s) for s in statuses):
        return "oom"
    return "restart_unknown" if any(signals.lost_termination(s) for s in statuses) else "none"


def over_request_read(item: KubeItem) -> bool:
    """Whether tuner reads, from an eviction, that a container used more than its request."""
    found = evictions.event_eviction(item.event) if item.event else None
    found = found or (evictions.pod_eviction(item.pod) if item.pod else None)
    return bool(found and found.resource == "memory" and found.over_request)


def scores(
    items: Sequence[T], truth: Callable[[T], str], read: Callable[[T], str], kinds: Iterable[str]
) -> dict[str, dict[str, float | int | None]]:
    """Precision and recall per kind, with the number of items of that kind."""
    out: dict[str, dict[str, float | int | None]] = {}
    pairs = [(truth(i), read(i)) for i in items]
    for kind in kinds:
        hits = sum(1 for t, r in pairs if t == r == kind)
        claimed = sum(1 for _, r in pairs if r == kind)
        actual = sum(1 for t, _ in pairs if t == kind)
        out[kind] = {
            "items": actual,
            "precision": hits / claimed if claimed else None,
            "recall": hits / actual if actual else None,
        }
    return out


def _figure(value: float | int | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _table(title: str, table: dict[str, dict[str, float | int | None]]) -> None:
    print(title)
    print(f"  {'kind':<16}{'items':>6}{'precision':>11}{'recall':>8}")
    for kind, row in table.items():
        print(
            f"  {kind:<16}{row['items']:>6}{_figure(row['precision']):>11}"
            f"{_figure(row['recall']):>8}"
        )


def run(lines: Sequence[LambdaLine], objects: Sequence[KubeItem]) -> dict[str, Any]:
    """Every figure of one part of the corpus."""
    evicted = [i for i in objects if i.kind == "eviction" and i.over_request is not None]
    return {
        "lambda_lines": len(lines),
        "lambda": scores(lines, lambda line: line.kind, lambda_kind, LAMBDA_KINDS),
        "kubernetes_objects": len(objects),
        "kubernetes": scores(objects, lambda item: item.kind, kubernetes_kind, KUBERNETES_KINDS),
        "over_request_right": sum(over_request_read(i) == i.over_request for i in evicted),
        "over_request_items": len(evicted),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the held-out figures (and the fitting part's for comparison)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the CI mode (the same corpus)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    every, objects = lambda_lines(), kubernetes_items()
    held_out, fitting, later = (
        run([x for x in every if keep(x)], [x for x in objects if keep(x)])
        for keep in (
            lambda x: x.split == "held-out",
            lambda x: x.split == "fitting",
            lambda x: x.batch == 2,
        )
    )
    wanted = [line for line in every if line.kind in LAMBDA_KINDS or summarize([line.text]).reports]
    passed = sum(1 for line in wanted if matches(FILTER_PATTERN, line.text))
    elapsed = time.perf_counter() - started
    print(f"corpus split by source address; load {os.getloadavg()[0]:.2f}, {elapsed:.2f} s")
    _table(f"Lambda, held-out part ({held_out['lambda_lines']} lines):", held_out["lambda"])
    _table(
        f"Kubernetes, held-out part ({held_out['kubernetes_objects']} objects):",
        held_out["kubernetes"],
    )
    print(
        f"  evictions told over or within the request right: {held_out['over_request_right']}"
        f" of {held_out['over_request_items']}"
    )
    _table(
        f"Lambda, quoted after the signatures were fixed ({later['lambda_lines']} lines):",
        later["lambda"],
    )
    _table(
        f"Kubernetes, quoted after the signatures were fixed ({later['kubernetes_objects']}):",
        later["kubernetes"],
    )
    _table(f"Lambda, fitting part ({fitting['lambda_lines']} lines):", fitting["lambda"])
    _table(
        f"Kubernetes, fitting part ({fitting['kubernetes_objects']} objects):",
        fitting["kubernetes"],
    )
    print(f"CloudWatch filter pattern (terms): lets {passed} of {len(wanted)} lines through")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(
                {"held_out": held_out, "fitting": fitting, "batch_2": later, "filter": passed}, out
            )
    missed = [
        kind
        for kind in TARGETS
        for figure in ("precision", "recall")
        if (held_out["lambda"][kind][figure] or 0.0) < BAR
    ]
    if missed or passed < len(wanted):
        print(f"below {BAR}: {sorted(set(missed))}" if missed else "filter drops lines")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
