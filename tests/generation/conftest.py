"""Generators under test, each on a real transport: llama.cpp in process, `llama_cpp.server` as a
subprocess for the OpenAI-compatible adapter, and vendor stubs for the closed APIs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.generation.llama_cpp import LlamaCppGenerator, derive_model_id, packaged_model_path
from rag.models import GroundedPrompt, Passage
from tests.stubs.anthropic_stub import AnthropicVendor
from tests.stubs.gemini_stub import GeminiVendor
from tests.stubs.openai_stub import OpenAIVendor
from tests.stubs.server import StubServer

OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
ANTHROPIC_MODEL = "claude-3-5-haiku-20241022"
GEMINI_MODEL = "gemini-2.0-flash-001"
SERVER_ALIAS = "gemma-3-270m"

FLEET = Passage(
    marker=1,
    title="Fleet controller",
    section="Architecture",
    text="The fleet controller is written in Rust for memory safety. It runs on every edge "
    "node and reconciles desired state every 15 minutes.",
)
EIFFEL = Passage(
    marker=2,
    title="Eiffel Tower",
    section="History",
    text="The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 "
    "metres tall.",
)
BACKUPS = Passage(
    marker=3,
    title="Operations handbook",
    section="Backups",
    text="Backups are taken nightly at 02:00 UTC and kept for 30 days. Restores must be "
    "approved by the on-call engineer.",
)
PROMPT = GroundedPrompt(
    question="What language is the fleet controller written in?",
    passages=[FLEET, EIFFEL, BACKUPS],
    max_tokens=48,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    model: Path = packaged_model_path()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        SERVER_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
        "--seed",
        "0",
    ]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start in 120 s:\n{log.read_text()}")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
