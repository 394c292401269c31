"""A worker's stdout and stderr, copied by the host into the function's log with caps.

The worker writes into a pipe, never into the log file itself.  The host copies at most
``output_bytes`` per invocation and marks the cut once; the log file is rotated to
``<name>.log.1`` when it passes ``log_bytes``.  A worker that writes while no invocation
runs fills the pipe and blocks until the next one: output cannot outrun the host.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_CHUNK = 65536
_ROTATION_LOCKS: dict[Path, threading.Lock] = {}
_REGISTRY_LOCK = threading.Lock()


def _rotation_lock(path: Path) -> threading.Lock:
    with _REGISTRY_LOCK:
        return _ROTATION_LOCKS.setdefault(path, threading.Lock())


class OutputSink:
    """Copies one worker's output pipe into its function's log, within the caps."""

    def __init__(self, fd: int, log_path: Path, output_bytes: int, log_bytes: int) -> None:
        self.fd = fd
        self.log_path = log_path
        self._output_bytes = output_bytes
        self._log_bytes = log_bytes
        self._budget = output_bytes
        self._cut = False
        self.cut_bytes = 0
        """Bytes dropped in the current invocation."""
        self._lock = _rotation_lock(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        os.set_blocking(fd, False)

    def begin_invocation(self) -> None:
        """Give the next invocation its full budget."""
        self._budget = self._output_bytes
        self._cut = False
        self.cut_bytes = 0

    def pump(self) -> bool:
        """Copy what the pipe holds now; False once the worker closed it."""
        while True:
            try:
                chunk = os.read(self.fd, _CHUNK)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            self._take(chunk)
            if len(chunk) < _CHUNK:
                return True

    def _take(self, chunk: bytes) -> None:
        kept = chunk[: self._budget]
        self._budget -= len(kept)
        self.cut_bytes += len(chunk) - len(kept)
        if len(kept) < len(chunk) and not self._cut:
            self._cut = True
            kept += (
                f"\n[tuner: output cut after {self._output_bytes} bytes in this invocation]\n"
            ).encode()
        if kept:
            self.note(kept)

    def note(self, data: bytes) -> None:
        """Append bytes to the log, rotating it first when it is full."""
        with self._lock:
            try:
                size = self.log_path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(data) > self._log_bytes:
                os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
            with self.log_path.open("ab") as log_file:
                log_file.write(data)

    def close(self) -> None:
        """Copy what is left (within the budget) and close the pipe."""
        self.pump()
        os.close(self.fd)
