"""tuner_handler on Lambda, against moto's server: the hand-off is an asynchronous Invoke.

moto cannot run a function without Docker, so the handler runs here, in the test, with a
context shaped as Lambda's; its boto3 calls go over real HTTP through a recording proxy
to moto, whose Lambda answers without running anything (``use_docker: false``).  The
test then plays Lambda's part: it hands the payload moto received to the handler, as
Lambda would to the next invocation.
"""

from __future__ import annotations

import io
import json
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_world import AwsWorld
from proxy import AwsProxy, Seen

import tuner_handler
from tuner.domain.errors import ProviderError
from tuner.domain.model import Change, Knob
from tuner.providers.aws import AwsProvider
from tuner_handler import HandoverRefused, handover, lambda_platform, split
from tuner_handler.envelopes import opened_part
from tuner_handler.settings import ASYNC_PAYLOAD_BYTES

TRACE_ID = "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=0"


def _moto(moto_url: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{moto_url}{path}", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status in (200, 201)


@pytest.fixture
def moto_lambda_without_docker(moto_url: str) -> Iterator[None]:
    """moto's Lambda answering invocations without running them (its documented config)."""
    _moto(moto_url, "/moto-api/config", {"lambda": {"use_docker": False}})
    yield
    _moto(moto_url, "/moto-api/config", {"lambda": {"use_docker": True}})


def package() -> bytes:
    """The function's deployment package: its handler and tuner_handler copied as it is."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "from tuner_handler import handover\n")
        for source in Path(tuner_handler.__file__).parent.glob("*.py"):
            archive.write(source, f"tuner_handler/{source.name}")
    return buffer.getvalue()


class LambdaContext:
    """The attributes of Lambda's context object the library reads; time runs per call."""

    def __init__(self, arn: str, request_id: str, remaining_ms: float, tick_ms: float) -> None:
        self.function_name = arn.rsplit(":", 1)[-1]
        self.invoked_function_arn = arn
        self.aws_request_id = request_id
        self._remaining = remaining_ms
        self._tick = tick_ms

    def get_remaining_time_in_millis(self) -> int:
        self._remaining -= self._tick
        return int(self._remaining)


@pytest.fixture
def function(
    world: AwsWorld,
    proxy: AwsProxy,
    moto_lambda_without_docker: None,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """A function on moto carrying the library; this process plays one of its invocations."""
    created = world.client("lambda").create_function(
        FunctionName="month-close",
        Runtime="python3.12",
        Role=world.role_arn(),
        Handler="handler.handler",
        Code={"ZipFile": package()},
        Timeout=900,
        Environment={"Variables": {"TUNER_HANDOVER_S": "30", "TUNER_FAN_OUT": "1"}},
    )
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "month-close")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE_ID)  # what the Lambda runtime sets
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", proxy.url)
    monkeypatch.setenv("TUNER_HANDOVER_S", "30")
    monkeypatch.setattr(lambda_platform, "_client", None)  # a client for this proxy
    return str(created["FunctionArn"])


@handover
def close_month(event: dict[str, Any], context: Any) -> Any:
    """Sums the accounts' balances, one account a step."""
    context.state.setdefault("total", 0)
    for account in context.each(event["accounts"]):
        context.state["total"] += sum(ord(c) for c in account)
        context.state.setdefault("note", event.get("note", ""))
    return {"accounts": len(event["accounts"]), "total": context.state["total"]}


ACCOUNTS = [f"acct-{n:03d}" for n in range(60)]
ONE_SHOT = {"accounts": 60, "total": sum(sum(ord(c) for c in a) for a in ACCOUNTS)}


def _invokes(proxy: AwsProxy) -> list[Seen]:
    return [s for s in proxy.seen if s.method == "POST" and s.path.endswith("/invocations")]


def test_the_hand_off_is_an_asynchronous_invoke_of_the_same_function_with_the_state(
    function: str, proxy: AwsProxy
) -> None:
    # 15 minutes minus 30 s per step: the margin (30 s + the longest step) comes at step ~28
    first = LambdaContext(function, "req-1", 900_000, 30_000)
    answer = close_month({"accounts": ACCOUNTS}, first)

    assert answer == {"handed_over": {"chain": "req-1", "link": 2}}
    [invoke] = _invokes(proxy)
    assert function.replace(":", "%3A") in invoke.path or function in invoke.path
    assert invoke.headers["X-Amz-Invocation-Type"] == "Event"
    assert invoke.headers["X-Amzn-Trace-Id"] == TRACE_ID  # Lambda's loop detection sees it
    payload = json.loads(invoke.body)
    assert payload["event"] == {"accounts": ACCOUNTS}
    handed = payload["tuner_handover"]
    assert (handed["chain"], handed["link"]) == ("req-1", 2)
    done = handed["state"]["position"]
    assert 0 < done < 60
    assert handed["state"]["total"] == sum(sum(ord(c) for c in a) for a in ACCOUNTS[:done])

    # Lambda delivers the payload to the next invocation, which has time to finish
    second = LambdaContext(function, "req-2", 900_000, 0)
    assert close_month(payload, second) == ONE_SHOT
    assert len(_invokes(proxy)) == 1


def test_a_payload_over_the_asynchronous_limit_is_refused_before_anything_is_sent(
    function: str, proxy: AwsProxy
) -> None:
    note = "x" * ASYNC_PAYLOAD_BYTES  # carried in the state: the next link's event is > 1 MB
    with pytest.raises(HandoverRefused, match="over Lambda's limit of 1,048,576"):
        close_month(
            {"accounts": ACCOUNTS, "note": note}, LambdaContext(function, "r", 900_000, 30_000)
        )
    assert _invokes(proxy) == []


def test_a_chain_at_its_most_links_is_not_handed_on(
    function: str, proxy: AwsProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNER_HANDOVER_MAX_LINKS", "2")
    last = {
        "tuner_handover": {"chain": "req-1", "link": 2, "state": {"position": 0, "total": 0}},
        "event": {"accounts": ACCOUNTS},
    }
    with pytest.raises(HandoverRefused, match="most links \\(2"):
        close_month(last, LambdaContext(function, "req-3", 900_000, 30_000))
    assert _invokes(proxy) == []


@split("pages")
def count_pages(event: dict[str, Any], context: Any) -> Any:
    """Counts the pages of its share."""
    return {"pages": len(event["pages"])}


def test_a_split_invokes_each_part_synchronously_and_merges_the_answers(
    function: str, proxy: AwsProxy, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNER_FAN_OUT", "3")
    answers = [json.dumps({"pages": n}) for n in (4, 3, 3)]  # what each part's Lambda returns
    _moto(
        moto_url,
        "/moto-api/static/lambda-simple/response",
        {"results": answers, "region": "eu-west-1"},
    )

    merged = count_pages({"pages": list(range(10))}, LambdaContext(function, "r", 900_000, 0))

    invokes = _invokes(proxy)
    assert len(invokes) == 3
    assert {i.headers.get("X-Amz-Invocation-Type", "RequestResponse") for i in invokes} == {
        "RequestResponse"
    }
    parts = sorted(
        (position.index, event["pages"])
        for event, position in (opened_part(json.loads(i.body)) for i in invokes)
        if position is not None
    )
    assert parts == [(0, [0, 1, 2, 3]), (1, [4, 5, 6]), (2, [7, 8, 9])]
    assert merged == {"pages": 10}


def test_the_provider_tunes_the_settings_a_function_declares_and_no_others(
    world: AwsWorld, make_provider: Callable[..., AwsProvider]
) -> None:
    declared = {"DB_PASSWORD": "s3cret", "TUNER_HANDOVER_S": "0", "TUNER_FAN_OUT": "1"}
    world.create_function("month-close", environment=declared)
    world.create_function("plain", environment={"DB_PASSWORD": "s3cret"})
    now = time.time()
    for name in ("month-close", "plain"):
        world.put_metrics(name, now - 30, Invocations=10, Errors=0)
    provider = make_provider()
    targets = {t.ref.name: t for t in provider.targets()}
    job, plain = targets["month-close"], targets["plain"]
    assert (job.config.handover_s, job.config.fan_out, job.config.split_above_kb) == (0.0, 1, 0)
    assert (plain.config.handover_s, plain.config.fan_out, plain.config.split_above_kb) == (
        None,
        None,
        None,
    )
    facts = provider.observe([job, plain], now - 60, now)
    assert facts[job.ref].extra["supports_handover"] == facts[job.ref].extra["supports_split"] == 1
    assert "supports_handover" not in facts[plain.ref].extra

    changes = [
        Change(Knob.HANDOVER_S, 0.0, 90.0),
        Change(Knob.FAN_OUT, 1, 4),
        Change(Knob.SPLIT_ABOVE_KB, 0, 512),
    ]
    config = provider.apply(job, changes)

    assert (config.handover_s, config.fan_out, config.split_above_kb) == (90.0, 4, 512)
    live = world.client("lambda").get_function_configuration(FunctionName="month-close")
    assert live["Environment"]["Variables"] == {
        "DB_PASSWORD": "s3cret",
        "TUNER_HANDOVER_S": "90",
        "TUNER_FAN_OUT": "4",
        "TUNER_SPLIT_ABOVE_KB": "512",
    }
    with pytest.raises(ProviderError, match="does not use tuner_handler"):
        provider.apply(plain, [Change(Knob.HANDOVER_S, None, 90.0)])
