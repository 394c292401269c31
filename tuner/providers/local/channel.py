"""The host's end of a worker's protocol pipes: newline-framed JSON, each frame capped.

Writes never block past a deadline, so a worker that stops reading cannot stall the host.
While it waits for a frame the reader also drains the worker's output pipe into the log,
so a worker that prints a lot never stalls on a full pipe during its invocation.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tuner.providers.local.output import OutputSink

_CHUNK = 65536
TICK_S = 0.1
"""How often ``on_tick`` runs while a frame is awaited (host-side watchdogs)."""


class FrameTooLargeError(Exception):
    """The worker sent more than the frame cap without ending the frame."""


@dataclass(frozen=True, slots=True)
class SkippedFrame:
    """A frame over the cap of its kind: read to its end and thrown away, never parsed."""

    kind: str
    size: int


class FrameReader:
    """Reads capped, newline-terminated frames from a worker with a deadline.

    Every frame is capped at ``frame_bytes``; a frame of a kind listed in ``kind_bytes``
    (its type, which every frame names first) is held to that smaller cap: once it
    passes it, the rest of the frame is read and thrown away as it comes, so the host
    never holds more than the cap of it.
    """

    def __init__(
        self,
        fd: int,
        sink: OutputSink,
        frame_bytes: int,
        on_tick: Callable[[], None] | None = None,
        kind_bytes: Mapping[str, int] | None = None,
    ) -> None:
        self._fd = fd
        self._sink: OutputSink | None = sink
        self._frame_bytes = frame_bytes
        self._kind_bytes = dict(kind_bytes or {})
        self._on_tick = on_tick
        self._buffer = bytearray()
        self._scanned = 0
        self._skipping: str | None = None
        self._skipped = 0

    def read_frame(self, deadline: float) -> bytes | SkippedFrame | None:
        """The next frame (or what was skipped of it), None when the deadline passed.

        Raises EOFError when the worker closed the pipe and FrameTooLargeError when a
        frame grows past the cap (nothing more is buffered).
        """
        if time.monotonic() >= deadline:
            return None  # a worker streaming frames does not outlive its deadline either
        while (end := self._buffer.find(b"\n", self._scanned)) < 0:
            self._scanned = len(self._buffer)
            self._hold_to_cap()
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
        if self._skipping is not None:
            skipped = SkippedFrame(self._skipping, self._skipped + len(frame))
            self._skipping, self._skipped = None, 0
            return skipped
        return frame

    def _hold_to_cap(self) -> None:
        """Throw away what is buffered of a frame over its kind's cap; fail one over every cap."""
        if self._skipped + self._scanned > self._frame_bytes:
            raise FrameTooLargeError(f"a message over {self._frame_bytes} bytes")
        if self._skipping is None and self._buffer.startswith(_KIND):
            with contextlib.suppress(ValueError):
                kind = frame_kind(bytes(self._buffer[:80]))
                if self._scanned > self._kind_bytes.get(kind, self._frame_bytes):
                    self._skipping = kind
        if self._skipping is not None:
            self._skipped += len(self._buffer)
            self._buffer.clear()
            self._scanned = 0


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
