"""Generators under test, each on a real transport: llama.cpp in process, `llama_cpp.server` as a
subprocess for the OpenAI-compatible adapter, and vendor stubs for the closed APIs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rag.errors import BackendUnavailable
from rag.generation.llama_cpp import LlamaCppGenerator, derive_model_id, packaged_model_path
from rag.generation.llama_server import llama_server as run_llama_server
from rag.models import GroundedPrompt
from tests.passages import BACKUPS, EIFFEL, FLEET
from tests.stubs.anthropic_stub import AnthropicVendor
from tests.stubs.gemini_stub import GeminiVendor
from tests.stubs.openai_stub import OpenAIVendor
from tests.stubs.server import StubServer

OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
ANTHROPIC_MODEL = "claude-3-5-haiku-20241022"
GEMINI_MODEL = "gemini-2.0-flash-001"
SERVER_ALIAS = "gemma-3-270m"

PROMPT = GroundedPrompt(
    question="What language is the fleet controller written in?",
    passages=[FLEET, EIFFEL, BACKUPS],
    max_tokens=48,
)


def _stub(
    vendor: OpenAIVendor | AnthropicVendor | GeminiVendor, model: str
) -> Iterator[StubServer]:
    stub = StubServer(vendor, model=model).start()
    yield stub
    stub.stop()


@pytest.fixture(scope="session")
def openai_stub() -> Iterator[StubServer]:
    yield from _stub(OpenAIVendor(), OPENAI_MODEL)


@pytest.fixture(scope="session")
def anthropic_stub() -> Iterator[StubServer]:
    yield from _stub(AnthropicVendor(), ANTHROPIC_MODEL)


@pytest.fixture(scope="session")
def gemini_stub() -> Iterator[StubServer]:
    yield from _stub(GeminiVendor(), GEMINI_MODEL)


@pytest.fixture(scope="session")
def local_llama() -> Iterator[LlamaCppGenerator]:
    generator = LlamaCppGenerator(threads=2)
    yield generator
    generator.close()


@pytest.fixture(scope="session")
def pinned_gemma_id() -> str:
    return derive_model_id(packaged_model_path())


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` with the packaged model; its base URL (…/v1)."""
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    try:
        with run_llama_server(packaged_model_path(), alias=SERVER_ALIAS, log=log) as base_url:
            yield base_url
    except BackendUnavailable as exc:
        pytest.fail(exc.message)
