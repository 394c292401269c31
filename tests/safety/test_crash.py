"""Crash safety: a daemon killed with SIGKILL around an apply neither repeats nor loses a change."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes import FakeClock, FakeProvider, RecordingNotifier
from tests.safety.file_provider import FileProvider
from tests.safety.harness import DEFAULT_RULES, REPO, WINDOW_S, applied, make_daemon, oom
from tuner.domain.decisions import Intent
from tuner.domain.errors import ProviderError
from tuner.domain.lifecycle import State
from tuner.domain.model import FunctionConfig, FunctionRef
from tuner.store.audit import SqliteStore

OOM_WINDOW = {"invocations": 100, "errors": 5, "ooms": 5, "peak_memory_mb": 250.0}
REF = FunctionRef("file", "resize")


def _daemon(config: Path, state: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.safety.crash_daemon", str(config), str(state)],
        cwd=REPO,
        env={**os.environ, **env},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _kill_at(config: Path, state: Path, point: str, marker: Path) -> None:
    """Start a daemon that stops at ``point`` inside apply, and SIGKILL it there."""
    proc = _daemon(config, state, {"SAFETY_CRASH_POINT": point, "SAFETY_MARKER": str(marker)})
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the daemon never reached the crash point"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _restart(config: Path, state: Path) -> tuple[dict[str, list[str]], str]:
    """Run the daemon to the end; its RESULT line and everything it printed."""
    proc = _daemon(config, state, {})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    [line] = [x for x in out.splitlines() if x.startswith("RESULT ")]
    result: dict[str, list[str]] = json.loads(line.removeprefix("RESULT "))
    return result, out


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "tuner.yaml"
    config.write_text(
        f"mode: apply\ninterval: 60s\nstore: tuner.db\nrules: [{DEFAULT_RULES}]\n"
        "channels: {console: {type: console}}\n",
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize(
    ("point", "reconciled", "announced"),
    [
        ("after-apply", State.APPLIED, "completed after a restart"),
        ("before-apply", State.FAILED, "interrupted before the change went live"),
    ],
)
def test_a_change_survives_sigkill_exactly_once(
    tmp_path: Path, point: str, reconciled: State, announced: str
) -> None:
    """Killed around apply, the restarted tuner completes the record and applies once in all."""
    config, store_path = _config(tmp_path), tmp_path / "tuner.db"
    state_path = tmp_path / "functions.json"
    FileProvider.create(state_path, {"resize": 256}, OOM_WINDOW)

    _kill_at(config, state_path, point, tmp_path / "marker")
    store = SqliteStore(store_path)
    try:
        assert [i.ref for i in store.open_intents()] == [REF]
        [opened] = store.decisions(REF)
        assert opened.state is State.APPLYING
    finally:
        store.close()

    result, printed = _restart(config, state_path)

    assert result["errors"] == []
    store = SqliteStore(store_path)
    try:
        assert store.open_intents() == []
        assert store.get(opened.id).state is reconciled  # type: ignore[union-attr]
        [change] = applied(store, REF)
        assert change.change is not None and change.change.after == 512
        assert not [d for d in store.decisions(REF) if d.state is State.APPLYING]
    finally:
        store.close()
    live = FileProvider(state_path).load()
    assert live["applies"] == [["resize", [["memory_mb", 512]]]]
    assert live["functions"]["resize"]["memory_mb"] == 512
    assert announced in printed, "what became of the interrupted change was announced"


class Unreadable(FakeProvider):
    """A provider whose ``read`` fails for a while (its API is down), while listing works."""

    def __init__(self) -> None:
        super().__init__()
        self.readable = False

    def read(self, ref: FunctionRef) -> FunctionConfig:
        """The live configuration, once the API is back."""
        if not self.readable:
            raise ProviderError("control plane unavailable", retryable=False)
        return super().read(ref)


def test_an_intent_that_cannot_be_settled_yet_holds_back_changes_until_it_is() -> None:
    """A crash left a change open and the provider cannot say if it is live: nothing is re-applied,
    and the record is completed (and announced) as soon as the provider answers."""
    provider = Unreadable()
    ref = provider.add("f", FunctionConfig(memory_mb=256, timeout_s=30))
    provider.windows["f"] = oom(ref)
    clock, notifier, store = FakeClock(), RecordingNotifier(), SqliteStore(":memory:")
    crashed = make_daemon([provider], store, clock)
    [decision] = crashed.run_cycle().decisions
    assert decision.change is not None
    # the first run died after applying and before recording: put the store back to that moment
    store.begin_intent(
        Intent("i1", decision.id, ref, (decision.change,), clock.now()),
        dataclasses.replace(decision, state=State.APPLYING),
    )
    clock.advance(WINDOW_S)

    restarted = make_daemon([provider], store, clock, notifier=notifier)
    assert restarted.reconcile() == []
    for _ in range(3):
        restarted.run_cycle()
        clock.advance(WINDOW_S)
    assert len(provider.applied) == 1, "no second change while the first is unsettled"
    assert [i.id for i in store.open_intents()] == ["i1"]

    provider.readable = True
    restarted.run_cycle()
    assert store.open_intents() == []
    assert store.get(decision.id).state is State.APPLIED  # type: ignore[union-attr]
    assert decision.id in {d.id for d in notifier.sent}
    assert len(provider.applied) == 1
