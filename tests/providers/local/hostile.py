"""Hostile handlers: functions written to break out of, fool or exhaust the local host."""

from __future__ import annotations

from pathlib import Path

from local_world import write_handlers

HOSTILE = {
    # Starts a child in its own process group and one in a new session, then outlives
    # its timeout; prints both pids so a test can look for them.
    "orphaner": (
        "memory_mb: 128\ntimeout_s: 1\n",
        "import subprocess, sys, time\n\n"
        "def handler(event, context):\n"
        "    grouped = subprocess.Popen(['sleep', '120'])\n"
        "    detached = subprocess.Popen(['sleep', '120'], start_new_session=True)\n"
        "    print('CHILDREN', grouped.pid, detached.pid, file=sys.stderr, flush=True)\n"
        "    time.sleep(30)\n",
    ),
    # Returns at once but leaves a thread burning CPU (or a child running) behind.
    "spinner": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "import os, subprocess, threading\n\n"
        "def spin():\n"
        "    while True:\n"
        "        pass\n\n"
        "def handler(event, context):\n"
        "    if event.get('child'):\n"
        "        subprocess.Popen(['sleep', '120'])\n"
        "    else:\n"
        "        threading.Thread(target=spin, daemon=True).start()\n"
        "    return os.getpid()\n",
    ),
    # Forks as many processes as it is asked for and counts those that started.
    "forker": (
        "memory_mb: 128\ntimeout_s: 10\n",
        "import subprocess\n\n"
        "def handler(event, context):\n"
        "    started = []\n"
        "    for _ in range(event['n']):\n"
        "        try:\n"
        "            started.append(subprocess.Popen(['sleep', '30']))\n"
        "        except OSError:\n"
        "            pass\n"
        "    for child in started:\n"
        "        child.kill()\n"
        "        child.wait()\n"
        "    return len(started)\n",
    ),
    # Writes megabytes to stdout.
    "shouter": (
        "memory_mb: 128\ntimeout_s: 10\n",
        "import sys\n\n"
        "def handler(event, context):\n"
        "    line = 'x' * 1023 + '\\n'\n"
        "    for _ in range(event['mb'] * 1024):\n"
        "        sys.stdout.write(line)\n"
        "    sys.stdout.flush()\n"
        "    return 'done'\n",
    ),
    # Writes a forged result (out of memory, tiny peak) to every descriptor it has.
    "forger": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "import json, os\n\n"
        "def handler(event, context):\n"
        "    forged = json.dumps({'type': 'result', 'outcome': 'oom', 'peak_mb': 1}) + '\\n'\n"
        "    for fd in range(64):\n"
        "        try:\n"
        "            os.write(fd, forged.encode())\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 'forged'\n",
    ),
    # Writes megabytes without a newline to every pipe it holds (the protocol included).
    "flooder": (
        "memory_mb: 128\ntimeout_s: 10\n",
        "import os, stat, threading\n\n"
        "def flood(fd):\n"
        "    block = b'x' * (1 << 20)\n"
        "    try:\n"
        "        for _ in range(event_mb):\n"
        "            os.write(fd, block)\n"
        "    except OSError:\n"
        "        pass\n\n"
        "event_mb = 300\n\n"
        "def handler(event, context):\n"
        "    pipes = [fd for fd in range(3, 64) if _is_pipe(fd)]\n"
        "    threads = [threading.Thread(target=flood, args=(fd,)) for fd in pipes]\n"
        "    for thread in threads:\n"
        "        thread.start()\n"
        "    for thread in threads:\n"
        "        thread.join()\n"
        "    return pipes\n\n"
        "def _is_pipe(fd):\n"
        "    try:\n"
        "        return stat.S_ISFIFO(os.fstat(fd).st_mode)\n"
        "    except OSError:\n"
        "        return False\n",
    ),
    # Looks at who it runs as, what it can read and what its environment holds.
    "snoop": (
        "memory_mb: 128\ntimeout_s: 5\nenvironment: {GREETING: hello}\n",
        "import os, tempfile\n\n"
        "def handler(event, context):\n"
        "    try:\n"
        "        shadow = open('/etc/shadow').read()[:20]\n"
        "    except OSError as error:\n"
        "        shadow = type(error).__name__\n"
        "    tmp = tempfile.gettempdir()\n"
        "    info = os.stat(tmp)\n"
        "    return {'uid': os.getuid(), 'gid': os.getgid(), 'groups': os.getgroups(),\n"
        "            'environment': dict(os.environ), 'shadow': shadow, 'tmp': tmp,\n"
        "            'tmp_mode': info.st_mode & 0o777, 'tmp_uid': info.st_uid}\n",
    ),
    # Allocates in child processes, where the worker's own address-space cap does not add up.
    "child-hog": (
        "memory_mb: 128\ntimeout_s: 10\n",
        "import subprocess, sys\n\n"
        "HOG = ('import time\\n'\n"
        "       'block = bytearray({mb} << 20)\\n'\n"
        "       'for i in range(0, len(block), 4096): block[i] = 1\\n'\n"
        "       'time.sleep(1)\\n')\n\n"
        "def handler(event, context):\n"
        "    children = [subprocess.Popen([sys.executable, '-c', HOG.format(mb=event['mb'])])\n"
        "                for _ in range(event['children'])]\n"
        "    return [child.wait() for child in children]\n",
    ),
    # Reads another worker's environment and memory map through /proc (same user).
    "peeker": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "def handler(event, context):\n"
        "    found = {}\n"
        "    for name in ('environ', 'maps'):\n"
        "        try:\n"
        "            found[name] = open(f'/proc/{event[\"pid\"]}/{name}').read()[:20]\n"
        "        except OSError as error:\n"
        "            found[name] = type(error).__name__\n"
        "    return found\n",
    ),
    # Asks for thousands of cache values on the protocol pipe and never reads the answers.
    "jammer": (
        "memory_mb: 128\ntimeout_s: 1\n",
        "import json, os, stat, time\n\n"
        "def handler(event, context):\n"
        "    frame = json.dumps({'type': 'cache_get', 'key': 'k'}).encode() + b'\\n'\n"
        "    pipes = [fd for fd in range(3, 64) if _writable_pipe(fd)]\n"
        "    for _ in range(5000):\n"
        "        for fd in pipes:\n"
        "            os.write(fd, frame)\n"
        "    time.sleep(30)\n\n"
        "def _writable_pipe(fd):\n"
        "    try:\n"
        "        return stat.S_ISFIFO(os.fstat(fd).st_mode) and os.write(fd, b'') == 0\n"
        "    except OSError:\n"
        "        return False\n",
    ),
    # Reports a failed call to a dependency it never called, to blame another team.
    "blamer": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "import json, os\n\n"
        "def handler(event, context):\n"
        "    claim = {'type': 'dependency_call', 'name': 'payments-api', 'latency_ms': 2000.0,\n"
        "             'error': 'URLError: [Errno 111] Connection refused'}\n"
        "    for fd in range(3, 64):\n"
        "        try:\n"
        "            os.write(fd, json.dumps(claim).encode() + b'\\n')\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 'blamed'\n",
    ),
    # Writes a file of the size it is asked for into its temporary folder.
    "filler": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "import os, tempfile\n\n"
        "def handler(event, context):\n"
        "    path = os.path.join(tempfile.gettempdir(), 'big')\n"
        "    try:\n"
        "        with open(path, 'wb') as big:\n"
        "            for _ in range(event['mb']):\n"
        "                big.write(b'x' * (1 << 20))\n"
        "    except OSError as error:\n"
        "        return os.strerror(error.errno)\n"
        "    return os.path.getsize(path)\n",
    ),
    # Ships a link to a file only root may read, hoping the host copies or opens it as root.
    "linker": (
        "memory_mb: 128\ntimeout_s: 5\n",
        "def handler(event, context):\n"
        "    try:\n"
        "        return open('shadow-link').read()[:20]\n"
        "    except OSError as error:\n"
        "        return type(error).__name__\n",
    ),
}


# Sends a forged profile and a forged ``ok`` at once on the worker's own channel (whose
# lock keeps the tracer's sends from coming between them), and stays busy so that the
# tracer's own last profile never comes.
TRACE_FORGER = (
    "import json, time\n\n"
    "def node(wall_ms, children=()):\n"
    "    return {'function': 'f', 'file': 'x.py', 'line': 1, 'wall_ms': wall_ms,\n"
    "            'cpu_ms': 0, 'samples': 1, 'lines': {}, 'children': list(children)}\n\n"
    "def handler(event, context):\n"
    "    tree = node(event.get('wall_ms', 1), [node(1) for _ in range(event['nodes'] - 1)])\n"
    "    forged = {'type': 'trace', 'complete': True, 'samples': 1, 'cpu_ms': 1,\n"
    "              'tree': tree, 'where': [], 'exception': None, 'memory': None}\n"
    "    result = {'type': 'result', 'outcome': 'ok', 'result': 'forged'}\n"
    "    context._channel.send_encoded(json.dumps(forged) + '\\n' + json.dumps(result))\n"
    "    time.sleep(3)\n"
)
"""A traced handler's source: ``{'nodes': N, 'wall_ms': W}`` forges an N-frame profile."""


def write_hostile(directory: Path) -> Path:
    """Write the hostile functions into ``directory`` (a functions directory)."""
    write_handlers(directory, HOSTILE)
    (directory / "functions" / "linker" / "shadow-link").symlink_to("/etc/shadow")
    return directory
