"""The token bucket that keeps tuner under the Lambda control-plane quota."""

from __future__ import annotations

import threading
import time

from tuner.providers.aws.quotas import TokenBucket


class VirtualTime:
    """A clock that only moves when somebody sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_burst_passes_then_requests_are_spaced_at_the_rate() -> None:
    clock = VirtualTime()
    bucket = TokenBucket(10, monotonic=clock.monotonic, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(30)]
    assert waits[:10] == [0.0] * 10
    assert all(abs(w - 0.1) < 1e-9 for w in waits[10:])
    assert abs(clock.now - 2.0) < 1e-9  # 30 requests at 10/s after a burst of 10


def test_idle_time_refills_the_bucket_up_to_the_burst_only() -> None:
    clock = VirtualTime()
    bucket = TokenBucket(5, burst=5, monotonic=clock.monotonic, sleep=clock.sleep)
    for _ in range(5):
        bucket.acquire()
    clock.now += 60.0
    waits = [bucket.acquire() for _ in range(6)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] > 0


def test_threads_together_stay_under_the_rate() -> None:
    bucket = TokenBucket(200, burst=1)
    stamps: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(10):
            bucket.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert len(stamps) == 40
    assert stamps[-1] - stamps[0] >= 39 / 200 * 0.95
