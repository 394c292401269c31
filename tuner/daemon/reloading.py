"""Rule reloading: the rule base in force, reloaded when its files change or on SIGHUP.

A file that fails to load keeps the last good rule base running; the error is logged
once per change of the files, naming file, line, rule and field.  Any other failure of
a reload (a bug, memory) is logged too and never stops the cycles.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from tuner.domain.errors import ConfigError, Problem
from tuner.engine import RuleBase, load_rules
from tuner.engine.rulefiles import yaml_files

log = structlog.get_logger(__name__)


class RuleSource:
    """Holds the current rule base and reloads it from its files when they change."""

    def __init__(self, paths: Sequence[str | Path]):
        self.paths = [Path(p) for p in paths]
        self._lock = threading.Lock()
        self._stamp = self._stamps()
        self.rules: RuleBase = load_rules(self.paths)  # the first load must succeed
        self.last_error: ConfigError | None = None
        self.on_reload: Callable[[bool], None] | None = None
        """Told after each reload of changed files: True when the new rules are in force."""

    def __call__(self) -> RuleBase:
        return self.rules

    def _stamps(self) -> tuple[tuple[str, float, int], ...]:
        out = []
        for f in yaml_files(self.paths):
            try:
                st = f.stat()
                out.append((str(f), st.st_mtime, st.st_size))
            except OSError:
                out.append((str(f), -1.0, -1))
        return tuple(out)

    def reload(self, force: bool = False) -> bool:
        """Reload when the files changed (or when forced); True when new rules are in force."""
        with self._lock:
            stamp = self._stamps()
            if stamp == self._stamp and not force:
                return False
            self._stamp = stamp
            try:
                rules = load_rules(self.paths)
            except ConfigError as exc:
                self.last_error = exc
                for problem in exc.problems:
                    log.error(
                        "rule file rejected, keeping the last good rules", problem=str(problem)
                    )
                if self.on_reload is not None:
                    self.on_reload(False)
                return False
            except Exception as exc:  # a reload never takes the loop down
                self.last_error = ConfigError(
                    [Problem(", ".join(map(str, self.paths)), None, f"cannot load: {exc!r}")]
                )
                log.exception("rule reload failed, keeping the last good rules")
                return False
            self.rules, self.last_error = rules, None
            log.info("rules reloaded", rules=len(rules), files=[str(p) for p in self.paths])
            if self.on_reload is not None:
                self.on_reload(True)
            return True
