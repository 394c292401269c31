"""A host killed in the middle of a chain: the next host resumes it, losing no step.

The promise (docs/remedies.md): each step runs at least once; a link cut short runs
again from the state it was handed, so only the steps of that one link may run twice.
The host runs in a process of its own, is killed with SIGKILL while link 2 runs, and a
new host on the same state folder finishes the chain.  Every step appends a line to a
log the test reads: which link ran which step.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_world import WallClock, write_handlers
from test_local_remedies import wait_for_chain

from tuner.providers.local.host import FunctionHost

pytestmark = pytest.mark.slow

STEPPER = (
    "memory_mb: 128\ntimeout_s: 1.5\nhandover_s: 0.3\n",
    "import os, time\n"
    "from tuner_handler import handover\n\n"
    "@handover\n"
    "def handler(event, context):\n"
    "    context.state.setdefault('total', 0)\n"
    "    for n in context.each(list(range(event['items']))):\n"
    "        time.sleep(event['step_s'])\n"
    "        with open(os.path.join(event['log'], 'steps'), 'a') as log:\n"
    "            log.write(f'{context.link} {n}\\n')\n"
    "        context.state['total'] += n\n"
    "    return {'total': context.state['total']}\n",
)

HOST = """
import json, sys, time
from pathlib import Path
from tuner.providers.local.host import FunctionHost

class Clock:
    def now(self):
        return time.time()

host = FunctionHost(Path(sys.argv[1]), Path(sys.argv[2]), Clock())
host.start()
print("RESULT", json.dumps(host.invoke("stepper", json.loads(sys.argv[3])).result), flush=True)
time.sleep(600)
"""


def _steps(log: Path) -> dict[int, list[int]]:
    """Step -> the links that ran it."""
    ran: dict[int, list[int]] = defaultdict(list)
    for line in log.read_text().splitlines():
        link, step = line.split()
        ran[int(step)].append(int(link))
    return ran


def _wait_for(condition: object, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def log_dir() -> Iterator[Path]:
    """A folder outside the test's own (which the workers' users cannot enter)."""
    folder = Path(tempfile.mkdtemp(prefix="tuner-steps-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_killed_host_resumes_its_chain_repeating_only_the_link_cut_short(
    tmp_path: Path, log_dir: Path
) -> None:
    app = write_handlers(tmp_path / "app", {"stepper": STEPPER})
    state = tmp_path / "state"
    steps = log_dir / "steps"
    steps.touch()
    for path, mode in ((log_dir, 0o777), (steps, 0o666)):
        os.chmod(path, mode)  # the workers run as the function's own user, each host's own
    event = {"items": 30, "step_s": 0.1, "log": str(log_dir)}
    first = subprocess.Popen(
        [sys.executable, "-c", HOST, str(app), str(state), json.dumps(event)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert first.stdout is not None
        line = next(line for line in first.stdout if line.startswith("RESULT "))
        handed = json.loads(line.removeprefix("RESULT "))["handed_over"]
        _wait_for(
            lambda: steps.exists() and len([s for s in _steps(steps).values() if 2 in s]) >= 2
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    cut_short = {step for step, links in _steps(steps).items() if 2 in links}

    host = FunctionHost(app, state, WallClock())
    host.start()
    try:
        chain = wait_for_chain(host, handed["chain"])
    finally:
        host.close()

    assert chain.status == "done", chain.error
    assert chain.result == {"total": sum(range(30))}
    ran = _steps(steps)
    assert sorted(ran) == list(range(30))  # no step lost
    twice = {step for step, links in ran.items() if len(links) > 1}
    assert twice, "the link cut short ran again"
    assert all(set(ran[step]) == {2} for step in twice)  # only link 2's steps repeat
    assert cut_short <= twice  # link 2 ran again from the state it was handed
