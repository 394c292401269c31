"""Decisions: planning a finding's changes, the guard, verification, advice and repeats.

The pure core above the engine: no I/O, no SDK."""
