"""Where ``tuner status`` and ``tuner why`` get their answers: the configuration's own daemon, or its store.

A configuration names its daemon's address (``http:``, or the default); ``--url`` and
``$TUNER_URL`` override it.  A daemon that answers at the configuration's address but
keeps another store (another configuration's daemon) is not asked: the command reads this
configuration's store instead, and says so.  The store holds every function seen (its last facts) and every
decision, so the fleet outlives the daemon.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.daemon.config import TunerConfig
from tuner.domain.decisions import Decision
from tuner.store.audit import SqliteStore

URL_ENV = "TUNER_URL"


@dataclass
class Asking:
    """The daemon of one configuration, asked over HTTP, with its store to fall back on."""

    config: TunerConfig
    url: str | None
    """None: the configuration serves no HTTP (``http: off``)."""
    note: str = ""
    """Why the daemon at ``url`` was not asked, when it was not."""
    _checked: bool | None = field(default=None, repr=False)

    @classmethod
    def of(cls, config: TunerConfig, url: str | None) -> Asking:
        """Ask ``url`` (from ``--url``), else ``$TUNER_URL``, else the configuration's address."""
        chosen = url or os.environ.get(URL_ENV)
        if chosen:
            return cls(config, chosen, _checked=True)  # named by the person: asked as it is
        address = config.http_address
        return cls(config, None if address is None else f"http://{address[0]}:{address[1]}")

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """The daemon's JSON answer; None when no daemon of this configuration answers.

        Raises LookupError with the daemon's words when it answers 4xx (no such function).
        """
        if self.url is None or not self._ours():
            return None
        return _get(self.url, path, params or {})

    def _ours(self) -> bool:
        """True when the daemon at the address keeps this configuration's store."""
        if self._checked is None:
            status = _get(self.url or "", "/api/status", {}) if self.url else None
            store = status.get("store") if isinstance(status, dict) else None
            mine = self.config.store_path().resolve()
            self._checked = status is not None and (store is None or Path(store) == mine)
            if status is not None and not self._checked:
                self.note = f"the daemon at {self.url} keeps another store ({store})"
        return self._checked

    @property
    def source(self) -> str:
        """Where daemon answers come from, for people."""
        return f"the running daemon at {self.url}"

    def store_source(self, newest: float | None) -> str:
        """Where store answers come from, for people, and why no daemon was asked."""
        from tuner.domain.times import iso

        why = self.note or (
            "no daemon answered" if self.url else "this configuration serves no HTTP"
        )
        when = f" as of {iso(newest)}" if newest else ""
        return f"the store {self.config.store_path()}{when} ({why})"

    def read_store(self) -> tuple[list[Decision], dict[str, tuple[float, dict[str, Any]]]]:
        """Every decision (oldest first) and every function remembered; empty without a store."""
        path = self.config.store_path()
        if not path.exists():
            return [], {}
        store = SqliteStore(path)
        try:
            return store.decisions(limit=1_000_000), store.functions()
        finally:
            store.close()


def _get(url: str, path: str, params: Mapping[str, str]) -> Any:
    """GET a JSON answer; None when nothing answers there (or not with JSON)."""
    query = "?" + urllib.parse.urlencode(params) if params else ""
    full = url.rstrip("/") + path + query
    try:
        with urllib.request.urlopen(full, timeout=3) as answer:  # noqa: S310 - an http URL we build
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            return None
        try:
            detail = json.loads(exc.read()).get("error", "")
        except ValueError:
            detail = ""
        raise LookupError(detail or f"{full}: HTTP {exc.code}") from None
    except (OSError, ValueError):
        return None
