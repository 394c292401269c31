"""A thin JSON client for the Kubernetes API on top of the official ``kubernetes`` package.

Workloads are handled as plain JSON objects (dicts) so Deployments, Knative Services
and core resources go through the same few calls.  API failures become tuner errors:
409 -> :class:`ConflictError`, 429 -> :class:`ThrottledError`, 404 -> :class:`NotFoundError`,
401/403 -> :class:`ForbiddenError`, everything else
:class:`ProviderError` (retryable for 5xx and connection failures).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import structlog

from tuner.domain.errors import ConflictError, ProviderError, ThrottledError

log = structlog.get_logger(__name__)

JsonObject = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"


class NotFoundError(ProviderError):
    """The object or the resource type does not exist on the API server."""


class ForbiddenError(ProviderError):
    """The API refused the call: the service account is not granted it (HTTP 401/403)."""


class KubeApi:
    """Reads, lists, patches, creates and deletes Kubernetes objects as JSON."""

    def __init__(self, api_url: str | None = None, *, timeout_s: float = 10.0) -> None:
        """Connect to ``api_url`` (no auth, for tests) or to the in-cluster / kubeconfig API."""
        from kubernetes import client, config  # imported lazily: ~1 s, ~190 MB of deps

        configuration = client.Configuration()
        if api_url:
            configuration.host = api_url.rstrip("/")
        else:
            try:
                config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
            except config.ConfigException:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
        self._client = client.ApiClient(configuration)
        self._timeout_s = timeout_s
        self.host: str = configuration.host

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()  # type: ignore[no-untyped-call]

    def get(self, path: str) -> JsonObject:
        """One object by its API path."""
        return self._call("GET", path)

    def list(self, path: str, label_selector: str = "") -> list[JsonObject]:
        """The items of a collection, optionally narrowed by a label selector."""
        query = {"labelSelector": label_selector} if label_selector else None
        items: list[JsonObject] = self._call("GET", path, query=query).get("items") or []
        return items

    def patch(self, path: str, body: Mapping[str, Any]) -> JsonObject:
        """Apply a JSON merge patch (RFC 7386) and return the object after it."""
        return self._call("PATCH", path, body=body, content_type=MERGE_PATCH)

    def create(self, path: str, body: Mapping[str, Any]) -> JsonObject:
        """Create an object in a collection."""
        return self._call("POST", path, body=body)

    def delete(self, path: str) -> JsonObject:
        """Delete one object by its API path."""
        return self._call("DELETE", path)

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> JsonObject:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        url = self._client.configuration.host + path
        if query:
            url += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
        headers = {"Accept": "application/json", "Content-Type": content_type}
        self._client.update_params_for_auth(headers, None, ["BearerToken"], path, method, body)
        try:
            response = self._client.call_api(
                method, url, header_params=headers, body=body, _request_timeout=self._timeout_s
            )
            response.read()  # type: ignore[no-untyped-call]
        except ApiException as exc:
            raise _error(method, path, exc.status or 0, exc.body or "") from exc
        except HTTPError as exc:
            raise ProviderError(f"{method} {path}: {exc}", retryable=True) from exc
        text = response.data.decode("utf-8") if response.data else ""
        if not 200 <= response.status < 300:
            raise _error(method, path, response.status, text)
        result: JsonObject = json.loads(text) if text else {}
        return result


def _error(method: str, path: str, status: int, body: str) -> ProviderError:
    try:
        message = json.loads(body).get("message", "") if body else ""
    except (ValueError, AttributeError):
        message = body[:200]
    text = f"{method} {path}: HTTP {status} {message}".strip()
    if status == 409:
        return ConflictError(text)
    if status == 429:
        return ThrottledError(text)
    if status == 404:
        return NotFoundError(text)
    if status in (401, 403):
        return ForbiddenError(text)
    return ProviderError(text, retryable=status >= 500 or status == 0)
