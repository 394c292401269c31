"""Batch size and fan-out change how many invocations do the work, and how long each takes."""

from __future__ import annotations

import time
from dataclasses import replace

from tuner.providers.local.host import FunctionHost
from tuner.providers.local.invocations import merge
from tuner_handler.parts import slices as split


def wait_for_records(host: FunctionHost, name: str, count: int, within_s: float = 10) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        records = host.records.invocations([name], 0, time.time() + 1)
        if sum(r.records or 0 for r in records) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{name} did not process {count} records within {within_s} s")


def test_the_queue_delivers_batch_size_records_per_invocation(host: FunctionHost) -> None:
    assert host.enqueue("batcher", [{"id": i} for i in range(20)]) == 20

    wait_for_records(host, "batcher", 20)

    records = host.records.invocations(["batcher"], 0, time.time() + 1)
    assert [r.records for r in records] == [5, 5, 5, 5]


def test_a_smaller_batch_size_means_more_and_shorter_invocations(host: FunctionHost) -> None:
    host.deploy("batcher", replace(host.config("batcher"), batch_size=10))
    host.enqueue("batcher", [{"id": i} for i in range(10)])
    wait_for_records(host, "batcher", 10)
    host.deploy("batcher", replace(host.config("batcher"), batch_size=2))
    host.enqueue("batcher", [{"id": i} for i in range(10)])
    wait_for_records(host, "batcher", 20)

    records = host.records.invocations(["batcher"], 0, time.time() + 1)
    big, small = records[0], records[1:]
    assert big.records == 10 and [r.records for r in small] == [2] * 5
    assert big.duration_ms > 2 * max(r.duration_ms for r in small)


def test_the_batch_window_delivers_a_partial_batch(host: FunctionHost) -> None:
    host.enqueue("batcher", [{"id": 1}, {"id": 2}])

    wait_for_records(host, "batcher", 2, within_s=3)

    assert [r.records for r in host.records.invocations(["batcher"], 0, time.time() + 1)] == [2]


def test_fan_out_splits_a_list_into_parallel_invocations_and_merges(host: FunctionHost) -> None:
    records = [{"id": i} for i in range(40)]
    host.invoke("batcher", records[:2])  # a warm worker for the sequential run
    sequential = host.invoke("batcher", records)
    host.deploy("batcher", replace(host.config("batcher"), fan_out=4))
    host.invoke("batcher", records)  # four warm workers, so cold starts do not count

    parallel = host.invoke("batcher", records)

    assert sequential.invocations == 1 and parallel.invocations == 4
    assert parallel.outcome == "ok"
    assert parallel.result == list(range(40))
    parts = host.records.invocations(["batcher"], 0, time.time() + 1)[-4:]
    assert [r.records for r in parts] == [10, 10, 10, 10]
    assert max(r.duration_ms for r in parts) < sequential.duration_ms * 0.4
    assert parallel.duration_ms < sequential.duration_ms * 0.6


def test_split_and_merge() -> None:
    assert split([1, 2, 3, 4, 5], 2) == [[1, 2, 3], [4, 5]]
    assert split([1, 2], 5) == [[1], [2]]
    assert merge([[1], [2, 3]]) == [1, 2, 3]
    assert merge([{"a": 1}, [2]]) == [{"a": 1}, [2]]
