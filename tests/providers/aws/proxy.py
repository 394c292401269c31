"""An HTTP proxy in front of moto that answers chosen requests as real AWS would.

moto does not enforce Lambda's RevisionId, never reports an update in progress and never
fails an update.  This proxy forwards everything to moto except the requests a test
picks, which get a recorded AWS answer (status, error type, body) or have moto's JSON
answer amended.  boto3 talks to it over real HTTP, so botocore parses the answers
exactly as it parses AWS's.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length"}


@dataclass(frozen=True)
class Seen:
    """One request the proxy received, as it came."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Injection:
    """Answer up to ``times`` requests matching ``method`` and ``path`` differently."""

    method: str
    path: str
    times: int = 1
    target: str = ""
    """For JSON-protocol services: the operation in the X-Amz-Target header."""
    status: int | None = None
    error_type: str = ""
    body: dict[str, Any] | None = None
    amend: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    hits: int = 0

    def matches(self, method: str, path: str, target: str) -> bool:
        return (
            self.hits < self.times
            and method == self.method
            and bool(re.fullmatch(self.path, path.split("?")[0]))
            and target.endswith(self.target)
        )


def lambda_error(
    method: str, path: str, error_type: str, status: int, message: str, times: int = 1
) -> Injection:
    """An error as Lambda's REST-JSON protocol sends it, for matching requests."""
    body = {"Type": "User", "message": message}
    return Injection(method, path, times, status=status, error_type=error_type, body=body)


class AwsProxy:
    """The proxy server; use :func:`running_proxy` to start and stop it."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.injections: list[Injection] = []
        self.seen: list[Seen] = []
        """Every request received, in order."""
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.handle(self)

            do_PUT = do_POST = do_DELETE = do_PATCH = do_GET

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def inject(self, injection: Injection) -> Injection:
        """Add an injection; returns it so a test can read its hits."""
        with self._lock:
            self.injections.append(injection)
        return injection

    def _claim(self, method: str, path: str, target: str) -> Injection | None:
        with self._lock:
            for injection in self.injections:
                if injection.matches(method, path, target):
                    injection.hits += 1
                    return injection
        return None

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        with self._lock:
            self.seen.append(Seen(request.command, request.path, dict(request.headers), body))
        target = request.headers.get("X-Amz-Target", "")
        injection = self._claim(request.command, request.path, target)
        if injection is not None and injection.status is not None:
            headers = {"Content-Type": "application/json"}
            if injection.error_type:
                headers["x-amzn-ErrorType"] = injection.error_type
            self._send(request, injection.status, headers, json.dumps(injection.body).encode())
            return
        status, headers, payload = self._forward(request, body)
        if injection is not None and injection.amend is not None:
            payload = json.dumps(injection.amend(json.loads(payload))).encode()
        self._send(request, status, headers, payload)

    def _forward(
        self, request: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
            connection.request(request.command, request.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
            return response.status, kept, payload
        finally:
            connection.close()

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes
    ) -> None:
        request.send_response(status)
        for key, value in headers.items():
            request.send_header(key, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)


@contextmanager
def running_proxy(upstream: str) -> Iterator[AwsProxy]:
    """A proxy to ``upstream`` serving on 127.0.0.1 for the duration of the block."""
    proxy = AwsProxy(upstream)
    thread = threading.Thread(target=proxy.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
        thread.join()
