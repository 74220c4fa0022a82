"""Every model SDK's exceptions, turned into the project's error tree in one place.

The policy is the same for every vendor, so a router can act on it without knowing who failed:

- 429, or a rate-limit error inside a stream → `BackendRateLimited`, with `retry_after_s` from
  `Retry-After`/`retry-after-ms` or Google's `RetryInfo.retryDelay`.
- 408, 409, 5xx, Anthropic's 529 `overloaded_error`, a refused or broken connection →
  `BackendUnavailable` (retryable); no answer within the client's timeout → `BackendTimeout`.
- Any other 4xx (bad request, bad key, unknown model) → `BackendError`, not retryable: sending the
  same request again cannot help, and another model should be tried only on purpose.
- A body that is not what the protocol promises → `GenerationError`.

SDK modules are imported only when one of their exceptions is seen, so an adapter costs nothing
to import for a vendor that is not configured.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rag.errors import (
    BackendError,
    BackendRateLimited,
    BackendTimeout,
    BackendUnavailable,
    GenerationError,
    RagError,
)

RETRYABLE_STATUS = frozenset({408, 409})
# Error types some vendors send inside a 200 stream, after the status line has gone out.
_RATE_LIMIT_TYPES = frozenset({"rate_limit_error", "rate_limit_exceeded", "resource_exhausted"})
_UNAVAILABLE_TYPES = frozenset(
    {"overloaded_error", "api_error", "server_error", "unavailable", "internal", "timeout_error"}
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def google_retry_delay(details: Any) -> float | None:
    """`retryDelay` ("30s") of a `google.rpc.RetryInfo` in a Google error's details."""
    if not isinstance(details, list):
        return None
    for item in details:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            match = _DURATION.match(str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def from_status(
    status: int,
    message: str,
    *,
    backend: str,
    retry_after_s: float | None = None,
    error_type: str | None = None,
) -> RagError:
    """The error for an HTTP status, or for an error event's type when the status was 200."""
    kind = (error_type or "").lower()
    text = f"{backend} answered {status}: {message}" if status != 200 else f"{backend}: {message}"
    if status == 429 or kind in _RATE_LIMIT_TYPES:
        return BackendRateLimited(text, backend=backend, retry_after_s=retry_after_s)
    if status >= 500 or status in RETRYABLE_STATUS or kind in _UNAVAILABLE_TYPES:
        return BackendUnavailable(text, backend=backend, retry_after_s=retry_after_s)
    if status == 200:
        return GenerationError(text)
    return BackendError(text, backend=backend, retryable=False)


def _body_error(body: Any) -> tuple[str | None, str | None]:
    """(type, message) of `{"error": {...}}` bodies: OpenAI, Anthropic and Google all nest so."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        kind = error.get("type") or error.get("status") or error.get("code")
        message = error.get("message")
        return (str(kind) if kind else None, str(message) if message else None)
    return None, None


def _translate_openai_like(exc: Exception, backend: str, sdk: Any) -> RagError | None:
    """openai and anthropic are generated from the same template and share class names."""
    if isinstance(exc, sdk.APITimeoutError):
        return BackendTimeout(f"{backend} did not answer in time", backend=backend)
    if isinstance(exc, sdk.APIConnectionError):
        return BackendUnavailable(f"{backend} is unreachable: {exc}", backend=backend)
    if isinstance(exc, sdk.APIStatusError):
        kind, message = _body_error(exc.body)
        return from_status(
            exc.status_code,
            message or exc.message,
            backend=backend,
            retry_after_s=retry_after_seconds(exc.response.headers),
            error_type=kind,
        )
    if isinstance(exc, sdk.APIResponseValidationError):
        return GenerationError(f"{backend} sent a malformed response: {exc}")
    if isinstance(exc, sdk.APIError):
        # openai raises this for an `{"error": ...}` event inside a stream.
        kind, message = _body_error({"error": exc.body} if exc.body else None)
        return from_status(200, message or exc.message, backend=backend, error_type=kind)
    return None


def _translate_google(exc: Exception, backend: str) -> RagError | None:
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        headers = getattr(exc.response, "headers", None)
        # `details` is the whole error body: {"error": {"code", "status", "details": [...]}}.
        body = exc.details.get("error", exc.details) if isinstance(exc.details, dict) else {}
        retry_after = retry_after_seconds(headers) or google_retry_delay(body.get("details"))
        return from_status(
            exc.code,
            exc.message or str(exc),
            backend=backend,
            retry_after_s=retry_after,
            error_type=exc.status,
        )
    if isinstance(exc, errors.UnknownApiResponseError):
        return GenerationError(f"{backend} sent a malformed response: {exc}")
    return None


def _translate_transport(exc: Exception, backend: str, transport: Any) -> RagError | None:
    """`transport` is httpx or its fork httpx2 (which the SDKs moved to); same classes."""
    if isinstance(exc, transport.TimeoutException):
        return BackendTimeout(f"{backend} did not answer in time", backend=backend)
    if isinstance(exc, transport.TransportError):
        return BackendUnavailable(f"{backend} connection failed: {exc}", backend=backend)
    return None


def translate(exc: Exception, backend: str) -> RagError | None:
    """Our error for `exc`, or None when it is not an SDK's or transport's error."""
    package = type(exc).__module__.split(".", 1)[0]
    if package in {"openai", "anthropic"}:
        sdk = __import__(package)
        mapped = _translate_openai_like(exc, backend, sdk)
    elif package == "google":
        mapped = _translate_google(exc, backend)
    elif package in {"httpx", "httpx2"}:
        mapped = _translate_transport(exc, backend, __import__(package))
    else:
        mapped = None
    if mapped is None and isinstance(exc, ValueError | KeyError | TypeError | AttributeError):
        # JSON that does not parse, or parses into the wrong shape, while reading a response.
        mapped = GenerationError(f"{backend} sent a malformed response: {exc!r}")
    return mapped


@contextmanager
def sdk_errors(backend: str) -> Iterator[None]:
    """Wrap every call into a model SDK, and every read of its stream, in this."""
    try:
        yield
    except RagError:
        raise
    except Exception as exc:
        mapped = translate(exc, backend)
        if mapped is None:
            raise
        raise mapped from exc
