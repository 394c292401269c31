"""Registries: named plug-ins (providers, channels, actions) in one shape.

Each entry registers its name, the settings model of its YAML section (from which its
JSON Schema comes), what it needs granted (a provider's IAM actions or RBAC rules), and
how to load it.  Loading is lazy, so a user of the local host never imports boto3.  A
registry is an explicit constant built where its entries live, never mutated at import.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered plug-in."""

    name: str
    load: Callable[[], T]
    """Returns the plug-in (a module, a class or a factory); may import its SDK."""
    settings: type[Any] | None = None
    """The pydantic model of its YAML section."""
    permissions: tuple[str, ...] = ()
    """What it needs granted to run: IAM actions, RBAC rules (``group/resource:verb``)."""
    summary: str = ""
    needs: tuple[str, ...] = ()
    """The Python modules it imports when it runs (not all of them at load)."""
    extra: str = ""
    """The install extra that brings them: ``pip install 'tuner[EXTRA]'``."""

    def missing(self) -> str:
        """What must be installed before it can run, in one sentence; '' when nothing."""
        for module in self.needs:
            try:
                importlib.import_module(module)
            except ImportError:
                return (
                    f"{self.name} needs the extra {self.extra!r}: "
                    f"pip install 'tuner[{self.extra}]' ({module} is not installed)"
                )
        return ""


class UnknownNameError(KeyError):
    """A name that no entry of the registry has; says the close ones and the known ones."""

    def __init__(self, kind: str, name: str, known: list[str]):
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        self.message = f"unknown {kind} '{name}'{hint}; known: {', '.join(known)}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class Registry(Generic[T]):
    """Named entries of one kind, in the order they were given."""

    def __init__(self, kind: str, entries: Iterable[Entry[T]]):
        self.kind = kind
        self._entries = {e.name: e for e in entries}

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, name: str) -> Entry[T]:
        """The entry of a name; :class:`UnknownNameError` for any other name."""
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, list(self._entries)) from None

    def load(self, name: str) -> T:
        """The plug-in of a name, loaded now."""
        return self.entry(name).load()

    def get(self, name: str) -> T | None:
        """The plug-in of a name, or None for an unknown name."""
        entry = self._entries.get(name)
        return entry.load() if entry is not None else None

    def entries(self) -> list[Entry[T]]:
        """Every entry, in order."""
        return list(self._entries.values())
