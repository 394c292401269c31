"""A wired tuner over an in-memory provider, with its web server on a free port of 127.0.0.1."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeClock, FakeProvider, RecordingNotifier
from tuner.daemon.config import TunerConfig
from tuner.daemon.wiring import Tuner, build
from tuner.domain.model import DependencyFacts, FunctionConfig, FunctionRef, WindowFacts
from tuner.web.attaching import Insight, attach

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "a-test-token-that-is-long-enough"
X = FunctionRef("fake", "x")


@dataclass
class World:
    tuner: Tuner
    insight: Insight
    provider: FakeProvider
    clock: FakeClock
    notifier: RecordingNotifier

    @property
    def url(self) -> str:
        assert self.insight.url
        return self.insight.url.rstrip("/")

    def cycle(self, seconds: float = 60.0) -> None:
        self.clock.advance(seconds)
        self.tuner.daemon.run_cycle()

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, body
        return json.loads(body)

    def post(self, path: str, body: dict[str, Any], **headers: str) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


def make_provider() -> FakeProvider:
    provider = FakeProvider()
    provider.add("oomer", FunctionConfig(memory_mb=128, timeout_s=3.0), team="data")
    provider.add("down-a", FunctionConfig(memory_mb=256, timeout_s=3.0))
    provider.add("down-b", FunctionConfig(memory_mb=256, timeout_s=3.0))
    provider.add("healthy", FunctionConfig(memory_mb=512, timeout_s=3.0))
    provider.add("quiet", FunctionConfig(memory_mb=128, timeout_s=3.0))
    provider.windows["oomer"] = WindowFacts(
        X,
        0,
        0,
        invocations=20,
        errors=6,
        ooms=6,
        timeouts=0,
        peak_memory_mb=128.0,
        duration_p95_ms=400.0,
        duration_p99_ms=500.0,
    )
    outage = {"orders-db": DependencyFacts("orders-db", 20, 20, 3.0)}
    provider.windows["down-a"] = WindowFacts(
        X, 0, 0, invocations=20, errors=20, ooms=0, timeouts=0, dependencies=outage
    )
    provider.windows["down-b"] = provider.windows["down-a"]
    provider.windows["healthy"] = WindowFacts(
        X,
        0,
        0,
        invocations=20,
        errors=0,
        ooms=0,
        timeouts=0,
        peak_memory_mb=150.0,
        duration_p95_ms=50.0,
        duration_p99_ms=60.0,
        throttles=0,
        dependencies={"cache": DependencyFacts("cache", 40, 0, 2.0)},
    )
    return provider


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    provider = make_provider()
    clock = FakeClock()
    notifier = RecordingNotifier()
    config = TunerConfig(
        store=str(tmp_path / "tuner.db"),
        interval=60.0,
        rules=[str(ROOT / "rules" / "default.yaml")],
    )
    tuner = build(config, clock=clock, providers=[provider], notifier=notifier)
    insight = attach(tuner, ("127.0.0.1", 0), token=TOKEN)
    try:
        yield World(tuner, insight, provider, clock, notifier)
    finally:
        insight.close()
        tuner.close()
