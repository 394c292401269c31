"""Where the daemon's HTTP server listens: ``HOST:PORT`` or ``off``, loopback by default."""

from __future__ import annotations

import ipaddress

DEFAULT_ADDRESS = "127.0.0.1:8780"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def parse_address(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (or ``off``) -> (host, port); anything else is a ValueError that says why."""
    if text.strip().lower() == "off":
        return None
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"use HOST:PORT (e.g. 127.0.0.1:8780) or off, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    """True for a loopback name or address (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
