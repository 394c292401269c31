"""The host's end of a worker's protocol pipes: newline-framed JSON, each frame capped.

Writes never block past a deadline, so a worker that stops reading cannot stall the host.
While it waits for a frame the reader also drains the worker's output pipe into the log,
so a worker that prints a lot never stalls on a full pipe during its invocation.
"""

from __future__ import annotations

import json
import os
import select
import time
from collections.abc import Callable
from typing import Any

from tuner.providers.local.output import OutputSink

_CHUNK = 65536
TICK_S = 0.1
"""How often ``on_tick`` runs while a frame is awaited (host-side watchdogs)."""


class FrameTooLargeError(Exception):
    """The worker sent more than the frame cap without ending the frame."""


class FrameReader:
    """Reads capped, newline-terminated frames from a worker with a deadline."""

    def __init__(
        self,
        fd: int,
        sink: OutputSink,
        frame_bytes: int,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self._fd = fd
        self._sink: OutputSink | None = sink
        self._frame_bytes = frame_bytes
        self._on_tick = on_tick
        self._buffer = bytearray()
        self._scanned = 0

    def read_frame(self, deadline: float) -> bytes | None:
        """The next frame, None when the deadline passed.

        Raises EOFError when the worker closed the pipe and FrameTooLargeError when a
        frame grows past the cap (nothing more is buffered).
        """
        if time.monotonic() >= deadline:
            return None  # a worker streaming frames does not outlive its deadline either
        while (end := self._buffer.find(b"\n", self._scanned)) < 0:
            self._scanned = len(self._buffer)
            if self._scanned > self._frame_bytes:
                raise FrameTooLargeError(f"a message over {self._frame_bytes} bytes")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready = _readable(
                [self._fd] if self._sink is None else [self._fd, self._sink.fd],
                min(remaining, TICK_S),
            )
            if not ready:
                if self._on_tick is not None:
                    self._on_tick()
                continue
            if self._sink is not None and self._sink.fd in ready and not self._sink.pump():
                self._sink = None  # the worker closed its output; frames may still follow
            if self._fd in ready:
                chunk = os.read(self._fd, min(_CHUNK, self._frame_bytes + 1))
                if not chunk:
                    raise EOFError
                self._buffer += chunk
        frame = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        self._scanned = 0
        return frame


_KIND = b'{"type": "'


def frame_kind(frame: bytes) -> str:
    """The type a frame declares first, read before it is parsed; ValueError when it does not.

    Every message of the protocol names its type first, so the host can hold each kind to
    its own cap (a profile to the trace cap) before it parses a byte.
    """
    end = frame.find(b'"', len(_KIND), len(_KIND) + 40)
    if not frame.startswith(_KIND) or end < 0:
        raise ValueError("a message that does not begin with its type")
    return frame[len(_KIND) : end].decode("ascii", "replace")


def send_frame(fd: int, message: dict[str, Any], deadline: float) -> None:
    """Write one message to a non-blocking pipe; TimeoutError once the deadline passed."""
    data = memoryview(json.dumps(message).encode() + b"\n")
    while data:
        try:
            data = data[os.write(fd, data) :]
        except BlockingIOError:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the worker stopped reading") from None
            _writable(fd, remaining)


def _readable(fds: list[int], timeout_s: float) -> list[int]:
    """The descriptors that can be read (or were closed) within the time.

    ``poll`` rather than ``select``: a daemon holding many files gets descriptors above
    1024, which ``select`` cannot watch.
    """
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return [fd for fd, _ in poller.poll(timeout_s * 1000)]


def _writable(fd: int, timeout_s: float) -> None:
    """Wait until a pipe can be written (or the time is up)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    poller.poll(timeout_s * 1000)
