"""How one fact is documented: its type, unit and meaning (the fact reference's entries)."""

from __future__ import annotations

from dataclasses import dataclass

from tuner.engine.conditions import Type


@dataclass(frozen=True)
class FactDoc:
    """One documented fact: its type, unit and meaning."""

    type: Type
    unit: str
    doc: str
