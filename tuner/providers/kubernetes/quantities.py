"""Kubernetes resource quantities for memory, converted to and from tuner's MB.

tuner's ``memory_mb`` means mebibytes on Kubernetes: ``memory_mb=384`` is written as
``384Mi``.  Reading accepts every suffix Kubernetes does (``Ki Mi Gi Ti``, ``k M G T``,
plain bytes, exponents) and rounds up to a whole MB.
"""

from __future__ import annotations

import math
import re

_MIB = 1024 * 1024
_SUFFIXES = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "m": 10**-3,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+)|([a-zA-Z]*))$")


def parse_bytes(quantity: str | int | float) -> float:
    """The number of bytes a memory quantity such as ``512Mi`` or ``1G`` stands for."""
    if isinstance(quantity, int | float):
        return float(quantity)
    match = _QUANTITY.match(quantity.strip())
    if not match or (match.group(3) or "") not in _SUFFIXES:
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    number, exponent, suffix = match.groups()
    if exponent is not None:
        return float(f"{number}e{exponent}")
    return float(number) * _SUFFIXES[suffix or ""]


def parse_mb(quantity: str | int | float) -> int:
    """A memory quantity in whole MB (mebibytes), rounded up."""
    return math.ceil(parse_bytes(quantity) / _MIB - 1e-9)


def format_mb(memory_mb: int | float) -> str:
    """The quantity text for a number of MB, e.g. ``384Mi``."""
    return f"{math.ceil(memory_mb)}Mi"


def bytes_to_mb(value: float) -> float:
    """Bytes as MB (mebibytes), unrounded, for measurements."""
    return value / _MIB
