"""The packaged model answers the same whether it runs in process, streams, or sits behind
`llama_cpp.server` and is reached through the OpenAI-compatible adapter (greedy decoding)."""

from __future__ import annotations

import pytest

from rag.errors import BackendError
from rag.generation import Done, collect
from rag.generation.llama_cpp import LlamaCppGenerator
from rag.generation.openai_compat import OpenAICompatGenerator
from tests.generation.conftest import PROMPT, SERVER_ALIAS

pytestmark = pytest.mark.slow


def test_stream_and_generate_agree_in_process(local_llama: LlamaCppGenerator) -> None:
    whole = local_llama.generate(PROMPT)
    streamed = collect(local_llama.stream(PROMPT))

    assert streamed.text == whole.text
    assert streamed.prompt_tokens == whole.prompt_tokens
    assert abs(streamed.completion_tokens - whole.completion_tokens) <= 1
    assert streamed.finish_reason == whole.finish_reason


def test_the_server_answers_like_the_local_model(
    local_llama: LlamaCppGenerator, llama_server: str, pinned_gemma_id: str
) -> None:
    remote = OpenAICompatGenerator(
        SERVER_ALIAS, base_url=llama_server, model_id=pinned_gemma_id, api="completions"
    )
    try:
        local = local_llama.generate(PROMPT)
        served = remote.generate(PROMPT)
        assert served.text == local.text
        assert served.model == local.model
        assert served.prompt_tokens == local.prompt_tokens
    finally:
        remote.close()


def test_the_chat_endpoint_speaks_the_same_protocol(llama_server: str) -> None:
    # A base model echoes chat turns, so only the exchange is checked, not the answer.
    chat = OpenAICompatGenerator(SERVER_ALIAS, base_url=llama_server, api="chat", max_tokens=16)
    try:
        result = chat.generate(PROMPT)
        assert result.prompt_tokens > 0
        assert 0 < result.completion_tokens <= 16
        events = list(chat.stream(PROMPT))
        assert isinstance(events[-1], Done)
    finally:
        chat.close()


def test_ping_names_a_model_the_server_does_not_serve(llama_server: str) -> None:
    wrong = OpenAICompatGenerator("some-other-model", base_url=llama_server)
    try:
        with pytest.raises(BackendError, match=SERVER_ALIAS) as caught:
            wrong.ping()
        assert not caught.value.retryable
    finally:
        wrong.close()
