"""What a bounded server hands its handler, and what the handler answers.

A :class:`Handler` sees each request twice: :meth:`Handler.admit` with the headers
alone, before any byte of the body is read (the token, the address, the size are
checked there), and :meth:`Handler.respond` with the body, on a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol


class HeaderMap(Mapping[str, str]):
    """A request's headers, looked up by name in any case; repeated values joined by ", "."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            self._values[key] = f"{self._values[key]}, {value}" if key in self._values else value

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True, slots=True)
class Request:
    """One request's head: what is known before its body is read."""

    method: str
    path: str
    """The decoded path, without the query."""
    query: str
    """The raw query string, without ``?``."""
    headers: HeaderMap
    peer: str
    """The client's address."""
    port: int = 0
    """The local port the request came in on (a server may listen on several)."""

    def header(self, name: str) -> str | None:
        """A header's value by its name in any case, or None."""
        return self.headers.get(name)


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: status, body, headers; ``close`` ends the connection after it."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    close: bool = False


class Handler(Protocol):
    """Answers the requests of one server."""

    def admit(self, request: Request) -> Reply | None:
        """A refusal (401, 404, 429...) decided from the head alone, or None to go on.

        Runs on the server's event loop before the body is read: it must not block.
        """

    def respond(self, request: Request, body: bytes) -> Reply:
        """The answer to an admitted request with its body, computed on a worker thread."""


class BodyError(Exception):
    """A request body the server refuses to read, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def body_length(
    content_length: str | None, transfer_encoding: str | None, cap: int, *, required: bool
) -> int:
    """How many body bytes to read: the declared length, checked before a byte is read.

    Chunked bodies are refused (411), and so is a missing length when ``required``;
    a length that is not a plain number gives 400 and one above ``cap`` gives 413, so
    the server never reads more than ``cap`` bytes.
    """
    if transfer_encoding:
        raise BodyError(411, "chunked bodies are not accepted; send Content-Length")
    if content_length is None:
        if required:
            raise BodyError(411, "Content-Length is required")
        return 0
    text = content_length.strip()
    if not text.isdigit():  # rejects "-1", "+5", "1e9", "" and spaces inside
        raise BodyError(400, f"invalid Content-Length {content_length[:20]!r}")
    length = int(text)
    if length > cap:
        raise BodyError(413, f"body of {length} bytes is over the limit of {cap} bytes")
    return length
