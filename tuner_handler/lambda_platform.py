"""AWS Lambda: hand over by invoking the same function asynchronously; run parts synchronously.

boto3 is imported here only, and only when a handler hands over or splits on Lambda: the
Lambda Python runtime ships it, and nothing else of this library needs it.

- The next link is an asynchronous ``Invoke`` (``InvocationType=Event``) of the ARN this
  invocation was invoked by (an alias or version stays the same), whose payload must fit
  Lambda's asynchronous limit (1 MB): a larger one is refused before anything is sent.
- Lambda's recursive loop detection counts invocations of one chain of requests (also
  loops made only of Lambda functions) and stops the chain at about 16 by default: the
  library's own bound (``TUNER_HANDOVER_MAX_LINKS``, 10 unless set) stays below it.
- Each part is a synchronous ``Invoke`` (6 MB each way), all at once in threads.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tuner_handler.envelopes import link_envelope
from tuner_handler.outcomes import PartOutcome, Refused
from tuner_handler.settings import ASYNC_PAYLOAD_BYTES, SYNC_PAYLOAD_BYTES

_client_lock = threading.Lock()
_client: Any = None


def _lambda() -> Any:
    """One boto3 Lambda client for this execution environment (made on first use)."""
    global _client
    with _client_lock:
        if _client is None:
            import boto3  # the Lambda Python runtime ships it

            _client = boto3.client("lambda")
        return _client


def encoded(payload: Any, limit: int, what: str) -> bytes:
    """The payload as JSON bytes; :class:`Refused` when it is not JSON or over ``limit``."""
    try:
        body = json.dumps(payload, separators=(",", ":")).encode()
    except (TypeError, ValueError) as error:
        raise Refused(f"{what} is not JSON: {error}") from None
    if len(body) > limit:
        raise Refused(
            f"{what} is {len(body):,} bytes, over Lambda's limit of {limit:,}: keep large data"
            " in S3 (or another store) and carry its key"
        )
    return body


class Lambda:
    """The Lambda platform: the function invokes itself."""

    def hand_over(
        self, context: Any, chain: str, link: int, state: dict[str, Any], event: Any
    ) -> tuple[str, int]:
        """Invoke this function asynchronously with the next link's envelope."""
        body = encoded(
            link_envelope(chain, link, state, event), ASYNC_PAYLOAD_BYTES, "the next link's event"
        )
        answer = _lambda().invoke(
            FunctionName=context.invoked_function_arn, InvocationType="Event", Payload=body
        )
        if answer.get("StatusCode") != 202:
            raise Refused(f"Lambda answered {answer.get('StatusCode')} to the hand-over")
        return chain, link

    def run_parts(self, context: Any, events: list[Any]) -> list[PartOutcome]:
        """Invoke this function once per part, synchronously, all at once."""
        bodies = [encoded(e, SYNC_PAYLOAD_BYTES, f"part {i}") for i, e in enumerate(events)]
        client, arn = _lambda(), context.invoked_function_arn

        def run(body: bytes) -> PartOutcome:
            """One part, as Lambda answers it."""
            answer = client.invoke(FunctionName=arn, InvocationType="RequestResponse", Payload=body)
            payload = answer["Payload"].read()
            try:
                result = json.loads(payload) if payload else None
            except ValueError:
                return PartOutcome("error", error="the part's answer is not JSON")
            if answer.get("FunctionError"):
                message = result.get("errorMessage", "") if isinstance(result, dict) else ""
                return PartOutcome("error", error=str(message or answer["FunctionError"]))
            return PartOutcome("ok", result)

        with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
            return list(pool.map(run, bodies))
