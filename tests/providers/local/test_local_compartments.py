"""Functions against each other: each runs as its own user in its own view of /proc.

A hostile function that knows the pids of another function's worker and of its child
(the daemon's too) tries what a handler on a shared user could do: read their
environment, write their memory, stop them; and it looks for another function's
secrets on disk.  None of it may work, and the host records nothing against the victim.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_world import WallClock, write_handlers

from tuner.providers.local.host import FunctionHost
from tuner.providers.local.sandboxing import SandboxPolicy

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="functions get users of their own only as root")

FUNCTIONS = {
    # Starts a child (which inherits its secret), says both pids, and waits a while.
    "victim": (
        "memory_mb: 128\ntimeout_s: 5\nenvironment: {DB_PASSWORD: hunter2}\n",
        "import json, os, subprocess, time\n\n"
        "def handler(event, context):\n"
        "    child = subprocess.Popen(['sleep', '30'])\n"
        "    path = os.path.join(event['drop'], 'pids.json')\n"
        "    with open(path + '.tmp', 'w') as f:\n"
        "        json.dump({'worker': os.getpid(), 'child': child.pid}, f)\n"
        "    os.chmod(path + '.tmp', 0o644)\n"
        "    os.replace(path + '.tmp', path)\n"
        "    time.sleep(event['seconds'])\n"
        "    child.kill()\n"
        "    child.wait()\n"
        "    secret = open('.env').read().strip() if os.path.exists('.env') else ''\n"
        "    return {'secret': secret}\n",
    ),
    # Everything a handler on a shared user could do to another function's processes.
    "attacker": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "import glob, os, signal\n\n"
        "def attempt(action):\n"
        "    try:\n"
        "        action()\n"
        "        return 'done'\n"
        "    except OSError as error:\n"
        "        return type(error).__name__\n\n"
        "def read(path):\n"
        "    with open(path, 'rb') as f:\n"
        "        return f.read(4096)\n\n"
        "def poke(pid):\n"
        "    with open(f'/proc/{pid}/mem', 'r+b') as f:\n"
        "        f.seek(0x400000)\n"
        "        f.write(b'x')\n\n"
        "def handler(event, context):\n"
        "    found = {}\n"
        "    for pid in event['pids']:\n"
        "        found[str(pid)] = {\n"
        "            'environ': attempt(lambda: read(f'/proc/{pid}/environ')),\n"
        "            'cgroup': attempt(lambda: read(f'/proc/{pid}/cgroup')),\n"
        "            'mem': attempt(lambda: poke(pid)),\n"
        "            'stop': attempt(lambda: os.kill(pid, signal.SIGSTOP)),\n"
        "        }\n"
        "    found['listed'] = glob.glob('/tmp/tuner-runtime-*/functions/*/.env')\n"
        "    found['secrets'] = [attempt(lambda: read(path)) for path in event['paths']]\n"
        "    found['visible'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "    found['me'] = os.getpid()\n"
        "    return found\n",
    ),
}


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FunctionHost]:
    """A host whose victim keeps a secret in a folder only its owner may read."""
    app = write_handlers(tmp_path / "app", FUNCTIONS)
    victim = app / "functions" / "victim"
    (victim / ".env").write_text("DB_PASSWORD=hunter2\n")
    os.chmod(victim / ".env", 0o600)
    os.chmod(victim, 0o700)
    running = FunctionHost(
        app, tmp_path / "state", WallClock(), max_workers_per_function=2, sandbox=SandboxPolicy()
    )
    running.start()
    yield running
    running.close()


def drop_folder(tmp_path: Path) -> Path:
    """A folder every user may write to, where the victim says its pids."""
    drop = tmp_path / "drop"
    drop.mkdir()
    os.chmod(drop, 0o777)
    os.chmod(tmp_path, 0o755)
    for parent in tmp_path.parents:
        if parent == Path("/tmp"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o011)  # let every user pass through
    return drop


@needs_root
def test_a_function_cannot_see_signal_trace_or_read_another_functions_processes(
    host: FunctionHost, tmp_path: Path
) -> None:
    drop = drop_folder(tmp_path)
    answers: list[object] = []
    victim_call = threading.Thread(
        target=lambda: answers.append(host.invoke("victim", {"drop": str(drop), "seconds": 2}))
    )
    victim_call.start()
    deadline = time.monotonic() + 10
    while not (drop / "pids.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pids = json.loads((drop / "pids.json").read_text())

    daemon = os.getpid()
    seen = host.invoke(
        "attacker", {"pids": [pids["worker"], pids["child"], daemon], "paths": []}
    ).result
    victim_call.join()

    for pid in (pids["worker"], pids["child"], daemon):
        assert seen[str(pid)] == {
            "environ": "FileNotFoundError",  # not even in its /proc
            "cgroup": "FileNotFoundError",
            "mem": "FileNotFoundError",
            "stop": "PermissionError",  # another user's process, whatever its pid
        }
    assert seen["visible"] == [seen["me"]]
    [victim] = answers
    assert victim.outcome == "ok"  # type: ignore[attr-defined]
    records = host.records.invocations(["victim"], 0, time.time() + 1)
    assert [r.outcome for r in records] == ["ok"]  # nothing recorded against the victim


@needs_root
def test_secrets_stay_readable_by_their_function_only(host: FunctionHost, tmp_path: Path) -> None:
    drop = drop_folder(tmp_path)
    result = host.invoke("victim", {"drop": str(drop), "seconds": 0})
    assert result.outcome == "ok" and result.result == {"secret": "DB_PASSWORD=hunter2"}

    [copy] = Path("/tmp").glob(f"tuner-runtime-{os.getpid()}-*/functions/victim/.env")
    seen = host.invoke("attacker", {"pids": [], "paths": [str(copy)]}).result
    assert seen["secrets"] == ["PermissionError"] and seen["listed"] == []

    victim, attacker = host.worker_identity("victim"), host.worker_identity("attacker")
    assert victim is not None and attacker is not None and victim.uid != attacker.uid
    folder = copy.parent
    assert (folder.stat().st_mode & 0o777, folder.stat().st_uid) == (0o700, victim.uid)
    assert (copy.stat().st_mode & 0o777, copy.stat().st_uid) == (0o600, victim.uid)
    other_user = subprocess.run(["cat", str(copy)], user=65534, group=65534, capture_output=True)
    assert other_user.returncode != 0 and b"hunter2" not in other_user.stdout


def test_a_stop_from_outside_is_never_recorded_as_a_timeout(tmp_path: Path) -> None:
    app = write_handlers(
        tmp_path / "app",
        {"waiter": ("memory_mb: 128\ntimeout_s: 1\n", FUNCTIONS["victim"][1])},
    )
    host = FunctionHost(app, tmp_path / "state", WallClock(), max_workers_per_function=1)
    host.start()
    try:
        drop = drop_folder(tmp_path)
        answers: list[object] = []
        call = threading.Thread(
            target=lambda: answers.append(
                host.invoke("waiter", {"drop": str(drop), "seconds": 0.5})
            )
        )
        call.start()
        deadline = time.monotonic() + 10
        while not (drop / "pids.json").exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(json.loads((drop / "pids.json").read_text())["worker"], signal.SIGSTOP)
        call.join()
        [answer] = answers
        assert answer.outcome == "error" and "stopped by a signal" in answer.error  # type: ignore[attr-defined]
        assert host.records.invocations(["waiter"], 0, time.time() + 1) == []
    finally:
        host.close()
