"""Secrets read from the environment or from files, and kept out of logs."""

from __future__ import annotations

import os
from pathlib import Path


class Secret:
    """A secret value whose ``repr`` and ``str`` are ``***``, so it never reaches a log."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """The secret itself: pass it to the SDK, never to a logger."""
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the secret replaced by ``***``."""
        return text.replace(self._value, "***") if self._value else text

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"


class SecretMissingError(ValueError):
    """A configured secret could not be read (unset variable, missing file)."""


def read_secret(*, env: str | None, file: Path | None, what: str) -> Secret:
    """Read a secret from the named environment variable or file (exactly one is given)."""
    if env is not None:
        value = os.environ.get(env, "")
        if not value:
            raise SecretMissingError(f"{what}: environment variable {env} is not set")
        return Secret(value)
    if file is not None:
        try:
            value = file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise SecretMissingError(f"{what}: cannot read {file}: {error.strerror}") from None
        if not value:
            raise SecretMissingError(f"{what}: {file} is empty")
        return Secret(value)
    raise SecretMissingError(f"{what}: neither an environment variable nor a file is named")
