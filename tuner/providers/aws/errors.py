"""Translation of botocore's exceptions into tuner's provider errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tuner.domain.errors import ProviderError, ThrottledError, TunerError

THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
)

RETRYABLE_CODES = frozenset({"ResourceConflictException", "ServiceUnavailable"})


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ClientError, or '' for other exceptions."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


@contextmanager
def provider_errors(action: str) -> Iterator[None]:
    """Re-raise botocore failures during ``action`` as ProviderError / ThrottledError."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except TunerError:
        raise
    except ClientError as error:
        code = error_code(error)
        if code in THROTTLING_CODES:
            raise ThrottledError(f"{action}: throttled ({code})") from error
        retryable = code in RETRYABLE_CODES or code.endswith("ServiceException")
        raise ProviderError(f"{action}: {code}: {error}", retryable=retryable) from error
    except BotoCoreError as error:
        raise ProviderError(f"{action}: {error}", retryable=True) from error
