"""One contract for every `Generator`: the same prompt and the same assertions on each backend,
each reached the way production reaches it (a local model, a server process, a vendor's SDK)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from rag.errors import BackendUnavailable
from rag.generation import Done, Generator, TextDelta
from rag.generation.anthropic_api import AnthropicGenerator
from rag.generation.extractive import ExtractiveGenerator
from rag.generation.gemini_api import GeminiGenerator
from rag.generation.llama_server import free_port
from rag.generation.openai_compat import OpenAICompatGenerator
from rag.models import Generation
from tests.generation.conftest import (
    ANTHROPIC_MODEL,
    GEMINI_MODEL,
    OPENAI_MODEL,
    PROMPT,
    SERVER_ALIAS,
)
from tests.stubs.server import Reply, StubServer

BACKENDS = [
    pytest.param("llama_cpp", marks=pytest.mark.slow),
    pytest.param("llama_server", marks=pytest.mark.slow),
    "openai",
    "anthropic",
    "gemini",
    "extractive",
]


@dataclass
class Case:
    generator: Generator
    reports_usage: bool = True
    # llama_cpp.server ignores `stream_options.include_usage`, so its streams carry no usage.
    stream_reports_usage: bool = True
    stub: StubServer | None = None
    max_tokens: int = 48


def _stubbed(stub: StubServer) -> StubServer:
    stub.reset()
    # The stub refuses a request whose prompt lacks the passages or the question.
    stub.required_in_prompt = [p.text for p in PROMPT.passages] + [PROMPT.question]
    return stub


@pytest.fixture(params=BACKENDS)
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    name = request.param
    if name == "llama_cpp":
        yield Case(request.getfixturevalue("local_llama"))
        return
    if name == "extractive":
        yield Case(ExtractiveGenerator(), reports_usage=False)
        return
    generator: OpenAICompatGenerator | AnthropicGenerator | GeminiGenerator
    if name == "llama_server":
        generator = OpenAICompatGenerator(
            SERVER_ALIAS,
            base_url=request.getfixturevalue("llama_server"),
            model_id=request.getfixturevalue("pinned_gemma_id"),
            api="completions",
            max_tokens=48,
            backend="llama_server",
        )
        yield Case(generator, stream_reports_usage=False)
        generator.close()
        return
    stub = _stubbed(request.getfixturevalue(f"{name}_stub"))
    if name == "openai":
        generator = OpenAICompatGenerator(
            OPENAI_MODEL, base_url=f"{stub.url}/v1", api_key="sk-test", max_tokens=64
        )
    elif name == "anthropic":
        generator = AnthropicGenerator(
            ANTHROPIC_MODEL, base_url=stub.url, api_key="sk-ant-test", max_tokens=64
        )
    else:
        generator = GeminiGenerator(
            GEMINI_MODEL, base_url=stub.url, api_key="gm-test", max_tokens=64
        )
    yield Case(generator, stub=stub)
    generator.close()
    assert not stub.problems, stub.problems


def _check(case: Case, result: Generation, *, streamed: bool = False) -> None:
    assert isinstance(result, Generation)
    assert "Rust" in result.text
    assert result.text == result.text.strip()
    assert result.model == case.generator.model_id
    assert result.finish_reason in {"stop", "length"}
    if case.reports_usage and (case.stream_reports_usage or not streamed):
        assert result.prompt_tokens > 0
        assert 0 < result.completion_tokens <= case.max_tokens
    if case.stub is not None:
        sent = case.stub.requests[-1].body
        # The smaller of the prompt's and the adapter's budget, in each vendor's own field.
        limit = sent.get("max_tokens") or sent.get("generationConfig", {}).get("maxOutputTokens")
        assert limit == PROMPT.max_tokens


def test_generate_answers_from_the_passages(case: Case) -> None:
    _check(case, case.generator.generate(PROMPT))


def test_stream_yields_deltas_then_the_whole_generation(case: Case) -> None:
    events = list(case.generator.stream(PROMPT))

    *deltas, last = events
    assert isinstance(last, Done)
    assert deltas and all(isinstance(d, TextDelta) and d.text for d in deltas)
    assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == last.generation.text
    _check(case, last.generation, streamed=True)


def test_a_stream_closed_early_stops_the_backend(case: Case) -> None:
    if case.stub is not None:
        case.stub.reply(Reply("slow"))
    stream = case.generator.stream(PROMPT)
    first = next(stream)
    assert isinstance(first, TextDelta)
    stream.close()

    if case.stub is not None:
        assert case.stub.disconnected.wait(5), "the HTTP response was not closed"
    # Nothing is left holding the backend: the next request is answered normally.
    _check(case, case.generator.generate(PROMPT))


def test_ping_and_a_pinned_model_id(case: Case) -> None:
    case.generator.ping()
    model_id = case.generator.model_id
    assert model_id and model_id == case.generator.model_id
    if case.stub is not None:
        assert model_id in {OPENAI_MODEL, ANTHROPIC_MODEL, GEMINI_MODEL}


@pytest.mark.parametrize("vendor", ["openai", "anthropic", "gemini"])
def test_an_unreachable_endpoint_is_unavailable(vendor: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    generator: OpenAICompatGenerator | AnthropicGenerator | GeminiGenerator
    if vendor == "openai":
        generator = OpenAICompatGenerator("m", base_url=f"{url}/v1", timeout_s=2)
    elif vendor == "anthropic":
        generator = AnthropicGenerator("m", base_url=url, api_key="k", timeout_s=2)
    else:
        generator = GeminiGenerator("m", base_url=url, api_key="k", timeout_s=2)

    for call in (
        generator.ping,
        lambda: generator.generate(PROMPT),
        lambda: list(generator.stream(PROMPT)),
    ):
        with pytest.raises(BackendUnavailable) as caught:
            call()
        assert caught.value.retryable
        assert caught.value.backend == generator.backend
