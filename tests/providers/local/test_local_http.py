"""The invoke endpoint on 127.0.0.1, over real HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tuner.providers.local.provider import LocalProvider


def call(provider: LocalProvider, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{provider.url}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {provider.token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_endpoint_listens_on_loopback(provider: LocalProvider) -> None:
    assert provider.url is not None and provider.url.startswith("http://127.0.0.1:")


def test_get_functions_lists_configurations(provider: LocalProvider) -> None:
    status, body = call(provider, "GET", "/functions")

    assert status == 200
    by_name = {f["name"]: f for f in body["functions"]}
    assert sorted(by_name) == ["batcher", "crasher", "echo", "failing", "hog", "lookup", "sleeper"]
    assert by_name["hog"]["config"]["memory_mb"] == 128
    assert by_name["hog"]["revision"] == "1"
    assert by_name["batcher"]["config"]["batch_size"] == 5


def test_post_invoke_returns_the_result_and_its_outcome(provider: LocalProvider) -> None:
    status, body = call(provider, "POST", "/functions/echo/invoke", {"n": 1})

    assert status == 200
    assert body["outcome"] == "ok" and body["result"]["event"] == {"n": 1}
    assert body["invocations"] == 1


def test_post_invoke_reports_failures_as_outcomes(provider: LocalProvider) -> None:
    assert call(provider, "POST", "/functions/failing/invoke", {})[1]["outcome"] == "error"
    assert call(provider, "POST", "/functions/hog/invoke", {"mb": 300})[1]["outcome"] == "oom"


def test_records_are_queued_for_batched_delivery(provider: LocalProvider) -> None:
    status, body = call(provider, "POST", "/functions/batcher/records", [{"id": 1}, {"id": 2}])

    assert (status, body) == (202, {"accepted": 2})
    deadline = time.monotonic() + 5
    while not provider.host.records.invocations(["batcher"], 0, time.time() + 1):
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/functions/nope/invoke", {}, 404),
        ("GET", "/elsewhere", None, 404),
        ("POST", "/functions/echo/records", [{"id": 1}], 400),
        ("POST", "/functions/batcher/records", {"id": 1}, 400),
    ],
)
def test_bad_requests_are_refused(
    provider: LocalProvider, method: str, path: str, body: Any, status: int
) -> None:
    assert call(provider, method, path, body)[0] == status


def test_invalid_json_is_a_bad_request(provider: LocalProvider) -> None:
    request = urllib.request.Request(
        f"{provider.url}/functions/echo/invoke",
        data=b"{not json",
        method="POST",
        headers={"Authorization": f"Bearer {provider.token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 400
