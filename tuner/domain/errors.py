"""Exceptions tuner raises across layers."""

from __future__ import annotations

from dataclasses import dataclass


class TunerError(Exception):
    """Base of all tuner errors."""


@dataclass
class Problem:
    """One thing wrong with an input file, located as precisely as known."""

    file: str
    line: int | None
    message: str
    rule: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        parts = [where]
        if self.rule:
            parts.append(f"rule '{self.rule}'")
        if self.field:
            parts.append(f"field '{self.field}'")
        return ": ".join(parts) + f": {self.message}"


class ConfigError(TunerError):
    """A rule file or configuration file is invalid; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ProviderError(TunerError):
    """A provider call failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class ConflictError(ProviderError):
    """The function changed since it was read (stale revision): re-read and re-plan."""

    def __init__(self, message: str):
        super().__init__(message, retryable=True)


class ThrottledError(ProviderError):
    """The provider's control plane asked us to slow down."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message, retryable=True)
        self.retry_after = retry_after


class ApplyFailedError(ProviderError):
    """The provider accepted a change but it did not become live (e.g. Lambda ``Failed``)."""
