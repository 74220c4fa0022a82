"""Each vendor's failures, as its real SDK receives them from a stub, land on our error tree the
same way: 429 → retryable with the wait it asked for, 5xx/overloaded/timeout → retryable,
other 4xx → not retryable, a broken body → `GenerationError`. Both `generate` and `stream`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from rag.errors import (
    BackendError,
    BackendRateLimited,
    BackendTimeout,
    BackendUnavailable,
    GenerationError,
    RagError,
)
from rag.generation import Done
from rag.generation.anthropic_api import AnthropicGenerator
from rag.generation.gemini_api import GeminiGenerator
from rag.generation.openai_compat import OpenAICompatGenerator
from tests.generation.conftest import ANTHROPIC_MODEL, GEMINI_MODEL, OPENAI_MODEL, PROMPT
from tests.stubs.server import Reply, StubServer

VENDORS = ["openai", "anthropic", "gemini"]
Adapter = OpenAICompatGenerator | AnthropicGenerator | GeminiGenerator


@dataclass
class Vendor:
    name: str
    stub: StubServer
    generator: Adapter


@pytest.fixture(params=VENDORS)
def vendor(request: pytest.FixtureRequest) -> Iterator[Vendor]:
    name: str = request.param
    stub: StubServer = request.getfixturevalue(f"{name}_stub")
    stub.reset()
    generator: Adapter
    # A short timeout so that a hanging server is a fast test (not so short that a busy
    # machine turns a slow answer into a timeout).
    if name == "openai":
        generator = OpenAICompatGenerator(
            OPENAI_MODEL, base_url=f"{stub.url}/v1", api_key="sk-test", timeout_s=2.0
        )
    elif name == "anthropic":
        generator = AnthropicGenerator(
            ANTHROPIC_MODEL, base_url=stub.url, api_key="sk-ant-test", timeout_s=2.0
        )
    else:
        generator = GeminiGenerator(GEMINI_MODEL, base_url=stub.url, api_key="k", timeout_s=2.0)
    yield Vendor(name, stub, generator)
    generator.close()


def _calls(generator: Adapter) -> list[tuple[str, Callable[[], object]]]:
    return [
        ("generate", lambda: generator.generate(PROMPT)),
        ("stream", lambda: list(generator.stream(PROMPT))),
    ]


def _raised(vendor: Vendor, reply: Reply) -> list[RagError]:
    """What `generate` and `stream` raise when the server answers `reply`."""
    errors: list[RagError] = []
    for name, call in _calls(vendor.generator):
        vendor.stub.reply(reply)
        with pytest.raises(RagError) as caught:
            call()
        errors.append(caught.value)
        assert caught.value.__cause__ is not None, f"{name}: the SDK's error is kept as cause"
    return errors


@pytest.mark.parametrize("retry_after", ["3", "2.5"])
def test_429_is_retryable_with_the_wait_it_asked_for(vendor: Vendor, retry_after: str) -> None:
    for error in _raised(vendor, Reply("status", status=429, retry_after=retry_after)):
        assert isinstance(error, BackendRateLimited)
        assert error.retryable
        assert error.retry_after_s == pytest.approx(float(retry_after))
        assert error.backend == vendor.generator.backend


def test_gemini_429_without_header_uses_its_retry_info(gemini_stub: StubServer) -> None:
    gemini_stub.reset()
    generator = GeminiGenerator(GEMINI_MODEL, base_url=gemini_stub.url, api_key="k")
    gemini_stub.reply(Reply("status", status=429))
    with pytest.raises(BackendRateLimited) as caught:
        generator.generate(PROMPT)
    assert caught.value.retry_after_s == 7.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retryable(vendor: Vendor, status: int) -> None:
    for error in _raised(vendor, Reply("status", status=status, retry_after="1")):
        assert isinstance(error, BackendUnavailable)
        assert error.retryable
        assert error.retry_after_s == 1.0


def test_anthropic_overloaded_is_retryable(anthropic_stub: StubServer) -> None:
    anthropic_stub.reset()
    generator = AnthropicGenerator(ANTHROPIC_MODEL, base_url=anthropic_stub.url, api_key="k")
    vendor = Vendor("anthropic", anthropic_stub, generator)
    for error in _raised(vendor, Reply("status", status=529, error_type="overloaded_error")):
        assert isinstance(error, BackendUnavailable)
        assert "overloaded" in error.message.lower() or "529" in error.message
    # Overloaded can also arrive inside a stream that has already started.
    anthropic_stub.reply(Reply("stream_error", error_type="overloaded_error"))
    with pytest.raises(BackendUnavailable):
        list(generator.stream(PROMPT))


def test_openai_error_event_inside_a_stream(openai_stub: StubServer) -> None:
    openai_stub.reset()
    generator = OpenAICompatGenerator(OPENAI_MODEL, base_url=f"{openai_stub.url}/v1", api_key="k")
    openai_stub.reply(Reply("stream_error", error_type="server_error"))
    with pytest.raises(BackendUnavailable):
        list(generator.stream(PROMPT))


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_not_retryable(vendor: Vendor, status: int) -> None:
    for error in _raised(vendor, Reply("status", status=status)):
        assert type(error) is BackendError
        assert not error.retryable
        assert str(status) in error.message


def test_a_hanging_server_times_out_retryably(vendor: Vendor) -> None:
    for error in _raised(vendor, Reply("hang")):
        assert isinstance(error, BackendTimeout)
        assert error.retryable


def test_a_malformed_body_is_a_generation_error(vendor: Vendor) -> None:
    for error in _raised(vendor, Reply("malformed")):
        assert isinstance(error, GenerationError)


def test_a_wrong_model_name_is_refused_by_the_stub_and_not_retryable(vendor: Vendor) -> None:
    vendor.generator.model = "not-a-model"
    with pytest.raises(BackendError) as caught:
        vendor.generator.ping()
    assert not caught.value.retryable
    assert vendor.stub.problems or vendor.name == "openai"  # OpenAI lists models instead


def test_a_missing_key_is_a_clear_configuration_error() -> None:
    for generator in (
        OpenAICompatGenerator(OPENAI_MODEL),
        AnthropicGenerator(ANTHROPIC_MODEL),
        GeminiGenerator(GEMINI_MODEL),
    ):
        with pytest.raises(BackendError, match="no API key") as caught:
            generator.generate(PROMPT)
        assert not caught.value.retryable


def test_the_stub_recovers_after_errors(vendor: Vendor) -> None:
    vendor.stub.reply(Reply("status", status=503))
    with pytest.raises(BackendUnavailable):
        vendor.generator.generate(PROMPT)
    *_, last = vendor.generator.stream(PROMPT)
    assert isinstance(last, Done)
    assert "Rust" in last.generation.text
