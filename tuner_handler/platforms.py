"""Where a handler runs, and how it hands over or runs parts there.

- tuner's local host: its context offers ``hand_over`` (the host keeps the chain, durably,
  in its own queue) and ``invoke_parts`` (the host runs the parts in parallel);
- AWS Lambda: :mod:`tuner_handler.lambda_platform` invokes the function itself;
- anywhere else (a test calling the handler, another platform): neither, and the
  handler runs as if undecorated.
"""

from __future__ import annotations

import os
from typing import Any

from tuner_handler.outcomes import PartOutcome, Platform, Refused


class LocalHost:
    """tuner's local host: the host keeps chains in its queue and runs parts itself."""

    def hand_over(
        self, context: Any, chain: str, link: int, state: dict[str, Any], event: Any
    ) -> tuple[str, int]:
        """Give the host the state: it knows which chain and link it runs, and the event."""
        reply = context.hand_over(state)
        if not isinstance(reply, dict) or not reply.get("accepted"):
            error = reply.get("error") if isinstance(reply, dict) else None
            raise Refused(str(error or "the host did not accept the hand-over"))
        return str(reply.get("chain", chain)), int(reply.get("link", link))

    def run_parts(self, context: Any, events: list[Any]) -> list[PartOutcome]:
        """The host runs the parts in parallel and answers with each one's outcome."""
        replies = context.invoke_parts(events)
        if not isinstance(replies, list) or len(replies) != len(events):
            error = "the host did not run the parts"
            if isinstance(replies, dict) and replies.get("error"):
                error = str(replies["error"])
            raise Refused(error)
        return [
            PartOutcome(str(r.get("outcome", "error")), r.get("result"), str(r.get("error", "")))
            for r in replies
        ]


def platform_of(context: Any) -> Platform | None:
    """The platform a handler runs on, judged from its context; None where neither works."""
    if callable(getattr(context, "hand_over", None)) and callable(
        getattr(context, "invoke_parts", None)
    ):
        return LocalHost()
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and getattr(
        context, "invoked_function_arn", None
    ):
        from tuner_handler.lambda_platform import Lambda

        return Lambda()
    return None


def remaining_ms(context: Any) -> float | None:
    """Milliseconds the platform still gives this invocation, or None where it cannot say."""
    for name in ("remaining_time_ms", "get_remaining_time_in_millis"):
        method = getattr(context, name, None)
        if callable(method):
            return float(method())
    return None


def request_id(context: Any) -> str:
    """The platform's id of this invocation (Lambda's and the local host's ``aws_request_id``)."""
    value = getattr(context, "aws_request_id", None)
    if isinstance(value, str) and value:
        return value
    return os.urandom(16).hex()
