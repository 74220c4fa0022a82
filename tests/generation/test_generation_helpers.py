"""The pure parts of the generation layer: stream text assembly and the error policy."""

from __future__ import annotations

import email.utils
import time

import pytest

from rag.errors import BackendError, BackendRateLimited, BackendUnavailable, GenerationError
from rag.generation import Done, TextDelta, TrimmedText, collect, normalize_finish_reason
from rag.generation.errors import from_status, google_retry_delay, retry_after_seconds
from rag.models import Generation


@pytest.mark.parametrize(
    "raw",
    [
        ["  The", " answer", " is", " Rust", ".  ", "\n"],
        ["\n", " ", "Rust", " ", " ", "[1]", "\n\n"],
        ["", "   "],
        ["one"],
    ],
)
def test_trimmed_deltas_concatenate_to_the_stripped_text(raw: list[str]) -> None:
    trimmed = TrimmedText()
    sent = "".join(trimmed.push(part) for part in raw)
    assert sent == "".join(raw).strip() == trimmed.text


def test_collect_returns_the_final_generation() -> None:
    final = Generation(text="a b", model="m")
    assert collect([TextDelta("a"), TextDelta(" b"), Done(final)]) is final
    with pytest.raises(GenerationError):
        collect([TextDelta("a")])


def test_retry_after_in_seconds_milliseconds_or_a_date() -> None:
    assert retry_after_seconds({"retry-after": "12"}) == 12.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after_seconds({"retry-after": future}) or 0) <= 30
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
    assert retry_after_seconds(None) is None


def test_google_retry_info() -> None:
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "41s"},
    ]
    assert google_retry_delay(details) == 41.0
    assert google_retry_delay(None) is None


@pytest.mark.parametrize(
    ("status", "error_type", "expected", "retryable"),
    [
        (429, None, BackendRateLimited, True),
        (408, None, BackendUnavailable, True),
        (500, None, BackendUnavailable, True),
        (529, "overloaded_error", BackendUnavailable, True),
        (400, "invalid_request_error", BackendError, False),
        (401, None, BackendError, False),
        (200, "overloaded_error", BackendUnavailable, True),
        (200, "rate_limit_error", BackendRateLimited, True),
        (200, "something_else", GenerationError, None),
    ],
)
def test_status_policy(
    status: int, error_type: str | None, expected: type, retryable: bool | None
) -> None:
    error = from_status(status, "boom", backend="b", error_type=error_type, retry_after_s=2)
    assert type(error) is expected
    if retryable is not None:
        assert isinstance(error, BackendError)
        assert error.retryable is retryable


def test_finish_reasons_in_one_vocabulary() -> None:
    assert normalize_finish_reason("end_turn") == "stop"
    assert normalize_finish_reason("MAX_TOKENS") == "length"
    assert normalize_finish_reason("SAFETY") == "content_filter"
    assert normalize_finish_reason(None) is None
