"""A minimal client for the Prometheus HTTP API's instant and range queries."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tuner.domain.errors import ProviderError


@dataclass(frozen=True, slots=True)
class Sample:
    """One series of an instant-query result: its labels and value."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a range-query result: its labels and (time, value) points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


class PrometheusClient:
    """Runs PromQL instant and range queries against one Prometheus server."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        """Talk to the server at ``url`` (e.g. ``http://prometheus:9090``)."""
        self.url = url.rstrip("/")
        self._timeout_s = timeout_s

    def query(self, promql: str, at: float) -> list[Sample]:
        """Evaluate ``promql`` at time ``at``; NaN results are dropped."""
        data = self._get("query", {"query": promql, "time": f"{at:.3f}"}, promql)
        if data["resultType"] == "scalar":
            return _finite([Sample({}, float(data["result"][1]))])
        return _finite([Sample(item["metric"], float(item["value"][1])) for item in data["result"]])

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """Evaluate ``promql`` at every ``step`` seconds of ``[start, end]``; NaN points dropped."""
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:.3f}",
        }
        data = self._get("query_range", params, promql)
        return [
            Series(
                item["metric"],
                tuple((float(t), float(v)) for t, v in item["values"] if math.isfinite(float(v))),
            )
            for item in data["result"]
        ]

    def _get(self, endpoint: str, params: dict[str, str], promql: str) -> dict[str, Any]:
        url = f"{self.url}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self._timeout_s) as response:
                payload = json.load(response)
        except urllib.error.HTTPError as exc:
            reason = _error_text(exc)
            raise ProviderError(
                f"prometheus query failed: HTTP {exc.code} {reason}: {promql}",
                retryable=exc.code >= 500,
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            message = f"prometheus unreachable at {self.url}: {exc}"
            raise ProviderError(message, retryable=True) from exc
        if payload.get("status") != "success":
            raise ProviderError(f"prometheus query failed: {payload.get('error')}: {promql}")
        data: dict[str, Any] = payload["data"]
        return data


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.load(exc).get("error", ""))
    except (ValueError, OSError):
        return ""


def _finite(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if math.isfinite(s.value)]
