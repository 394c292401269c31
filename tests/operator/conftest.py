"""Fixtures' support for the operator tests: the emulator helpers' folder on the path."""

from __future__ import annotations

import sys
from pathlib import Path

# The emulator helpers live with the provider tests; both suites share them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "providers" / "kubernetes"))
