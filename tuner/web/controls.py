"""The dashboard's few write actions, allowed only with a token: pause, resume, approve, roll back.

Without a token the web layer is read-only.  A request must carry ``Authorization: Bearer
TOKEN``; a browser never adds that header to a request another site makes, and a request
whose ``Origin`` is not this server is refused too, so the actions are safe from cross-site
request forgery.  The token is compared in constant time and never logged or shown.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Callable, Mapping
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from tuner.daemon.control import ManualControl, ManualError
from tuner.decisions.documents import decision_json
from tuner.domain.decisions import Decision
from tuner.domain.errors import ConfigError, Problem
from tuner.domain.naming import AmbiguousFunction, UnknownFunction

log = structlog.get_logger(__name__)

Headers = Mapping[str, str] | Message
"""A request's headers: the server's ``email.message.Message`` or a plain mapping."""
TOKEN_ENV = "TUNER_WEB_TOKEN"
TOKEN_FILE_ENV = "TUNER_WEB_TOKEN_FILE"


class ActionError(Exception):
    """A refused action, with the HTTP status to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def load_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The token from ``TUNER_WEB_TOKEN`` or the file ``TUNER_WEB_TOKEN_FILE`` names; None: read-only."""
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV, "").strip()
    source = TOKEN_ENV
    if not token and env.get(TOKEN_FILE_ENV):
        source = env[TOKEN_FILE_ENV]
        try:
            token = Path(source).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                [Problem(source, None, f"cannot read the token: {exc.strerror}")]
            ) from None
    if token and len(token) < 16:
        raise ConfigError([Problem(source, None, "the web token needs at least 16 characters")])
    return token or None


class Actions:
    """Checks a request's token and origin, then pauses, resumes, approves or rolls back."""

    NAMES = ("pause", "resume", "approve", "rollback")

    def __init__(
        self,
        control: ManualControl,
        token: str | None,
        on_done: Callable[[list[Decision]], None] | None = None,
    ):
        self._control = control
        self._token = token
        self._on_done = on_done

    @property
    def enabled(self) -> bool:
        """True when a token is configured."""
        return bool(self._token)

    def handle(self, path: str, headers: Headers, body: bytes, peer: str) -> dict[str, Any]:
        """Carry out ``POST /api/actions/NAME`` with a JSON body; raises ActionError when refused."""
        self.authorise(headers)
        name = path.removeprefix("/api/actions/")
        if name not in self.NAMES:
            raise ActionError(404, f"no action {name!r}; actions: {', '.join(self.NAMES)}")
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise ActionError(400, "the body must be JSON") from None
        if not isinstance(data, dict):
            raise ActionError(400, "the body must be a JSON object")
        who = f"{str(data.get('by') or 'a person')[:60]} (dashboard, {peer})"
        why = str(data.get("why") or "")[:500]
        try:
            control = self._control
            if name in ("pause", "resume"):
                key = _text(data, "function")
                pausing = control.pause if name == "pause" else control.resume
                done = pausing(key, who, why)
            else:
                decision_id = _text(data, "decision")
                changing = control.approve if name == "approve" else control.roll_back
                done = changing(decision_id, who)
        except UnknownFunction as exc:
            raise ActionError(404, str(exc)) from None
        except (ManualError, AmbiguousFunction) as exc:
            raise ActionError(409, str(exc)) from None
        log.info("manual action", action=name, function=done.ref.key, by=who)
        if self._on_done is not None:
            undone = self._control.store.get(done.undoes) if done.undoes else None
            self._on_done([done] if undone is None else [undone, done])
        return {"ok": True, "decision": decision_json(done)}

    def authorise(self, headers: Headers) -> None:
        """Raise ActionError unless the request carries the token and comes from this origin."""
        if not self._token:
            raise ActionError(403, "read-only: no token is configured")
        given = (headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        if not given or not hmac.compare_digest(given.encode(), self._token.encode()):
            raise ActionError(401, "a valid token is needed: Authorization: Bearer TOKEN")
        origin = headers.get("Origin")
        host = headers.get("Host") or ""
        if origin and urlsplit(origin).netloc != host:
            raise ActionError(403, "cross-origin request refused")


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ActionError(400, f"the body needs {name!r}")
    return value
