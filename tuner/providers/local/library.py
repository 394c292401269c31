"""tuner_handler as the host's workers reach it: a copy in the host's runtime folder.

A worker runs with ``python -I``, often as a user that cannot read tuner's installation,
so, like the worker's own files, the handler-side library is copied where every worker
user can read it; the worker puts that folder on its path after the function's own
(a function that ships its own copy keeps it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import tuner_handler


def copy_library(folder: Path) -> Path:
    """Copy tuner_handler into ``folder`` (made readable by all); returns ``folder``."""
    target = folder / "tuner_handler"
    target.mkdir(parents=True)
    for directory in (folder, target):
        os.chmod(directory, 0o755)
    for source in Path(tuner_handler.__file__).parent.glob("*.py"):
        os.chmod(shutil.copy(source, target / source.name), 0o644)
    return folder
