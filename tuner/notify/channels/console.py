"""The console channel: readable text on the terminal, one compact block per message."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from tuner.notify.channels.base import ChannelOptions
from tuner.notify.messages import Message
from tuner.notify.settings import ConsoleChannelSettings


class ConsoleChannel(ChannelOptions):
    """Writes each message as a titled block to stdout or stderr."""

    type = "console"

    def __init__(self, name: str, settings: ConsoleChannelSettings, stream: TextIO | None = None):
        super().__init__(name, settings)
        self._stream_name = settings.stream
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        """Print the message as a block: a rule, the title, a rule, the text."""
        stream = self._stream or getattr(sys, self._stream_name)
        rule = "-" * min(78, max(20, len(message.title)))
        with self._lock:
            stream.write(f"{rule}\n{message.title}\n{rule}\n{message.text}\n")
            stream.flush()

    def redact(self, text: str) -> str:
        """The console has no secrets."""
        return text
