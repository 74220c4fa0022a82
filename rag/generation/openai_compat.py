"""One adapter for everything that speaks OpenAI's wire protocol: OpenAI itself, and the
self-hosted servers that copy it (vLLM, TGI, Ollama, LM Studio, llama.cpp's server).

They differ only in `base_url`, key and model name, plus two choices made here:

- `api="chat"` sends `/v1/chat/completions` with our system and user turns, for instruction-tuned
  models; `api="completions"` sends `/v1/completions` with the plain completion prompt, for base
  models (such as the packaged Gemma 270M, which echoes chat-formatted prompts).
- `max_tokens_field`: OpenAI's newer models accept only `max_completion_tokens`, while most
  servers still read `max_tokens`.

Retries are off in the SDK (`max_retries=0`): falling back or retrying is the router's decision.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Literal

from rag.errors import BackendError
from rag.generation import Done, EventStream, TextDelta, TrimmedText, normalize_finish_reason
from rag.generation.errors import sdk_errors
from rag.generation.prompts import render_chat_messages, render_completion_prompt
from rag.models import Generation, GroundedPrompt

if TYPE_CHECKING:
    from openai import OpenAI

ApiKind = Literal["chat", "completions"]
MaxTokensField = Literal["max_tokens", "max_completion_tokens"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
# The stop sequences a base model needs (see rag.generation.llama_cpp) within OpenAI's limit of 4.
COMPLETION_STOP = ["\n\n", "\n[", "Question:", "Passages:"]
# Local servers ignore the key, but the SDK refuses to start without one.
NO_KEY = "no-key"


class OpenAICompatGenerator:
    def __init__(
        self,
        model: str,
        *,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        model_id: str | None = None,
        api: ApiKind = "chat",
        max_tokens: int = 256,
        temperature: float = 0.0,
        timeout_s: float = 60.0,
        max_tokens_field: MaxTokensField = "max_tokens",
        stream_usage: bool = True,
        backend: str = "openai_compat",
    ) -> None:
        self.model = model
        self.base_url = base_url
        self._api_key = api_key
        self._model_id = model_id
        self.api: ApiKind = api
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.timeout_s = timeout_s
        self.max_tokens_field: MaxTokensField = max_tokens_field
        self.stream_usage = stream_usage
        self.backend = backend
        self._client: OpenAI | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id or self.model

    def client(self) -> OpenAI:
        with self._lock:
            if self._client is None:
                if not self._api_key and self.base_url == OPENAI_BASE_URL:
                    raise BackendError(
                        f"no API key configured for {self.backend}", backend=self.backend
                    )
                from openai import OpenAI

                self._client = OpenAI(
                    api_key=self._api_key or NO_KEY,
                    base_url=self.base_url,
                    timeout=self.timeout_s,
                    max_retries=0,
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def ping(self) -> None:
        """The server answers and serves our model (a listing costs no tokens)."""
        with sdk_errors(self.backend):
            served = [m.id for m in self.client().models.list()]
        if served and self.model not in served:
            raise BackendError(
                f"{self.base_url} does not serve model {self.model!r}; it serves {served[:10]}",
                backend=self.backend,
            )

    # Requests -----------------------------------------------------------------------------

    def _params(self, prompt: GroundedPrompt, *, stream: bool) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            self.max_tokens_field: max(1, min(prompt.max_tokens, self.max_tokens)),
        }
        if self.api == "chat":
            params["messages"] = render_chat_messages(prompt)
        else:
            params["prompt"] = render_completion_prompt(prompt)
            params["stop"] = COMPLETION_STOP
        if stream:
            params["stream"] = True
            if self.stream_usage:
                params["stream_options"] = {"include_usage": True}
        return params

    def _generation(self, text: str, usage: Any, finish_reason: str | None) -> Generation:
        return Generation(
            text=text,
            model=self.model_id,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            finish_reason=normalize_finish_reason(finish_reason),
        )

    def generate(self, prompt: GroundedPrompt) -> Generation:
        client = self.client()
        params = self._params(prompt, stream=False)
        with sdk_errors(self.backend):
            if self.api == "chat":
                chat = client.chat.completions.create(**params)
                choice = chat.choices[0]
                text, finish, usage = choice.message.content, choice.finish_reason, chat.usage
            else:
                completion = client.completions.create(**params)
                first = completion.choices[0]
                text, finish, usage = first.text, first.finish_reason, completion.usage
            return self._generation((text or "").strip(), usage, finish)

    def stream(self, prompt: GroundedPrompt) -> EventStream:
        client = self.client()
        params = self._params(prompt, stream=True)
        text = TrimmedText()
        finish: str | None = None
        usage: Any = None
        with sdk_errors(self.backend):
            if self.api == "chat":
                response: Any = client.chat.completions.create(**params)
            else:
                response = client.completions.create(**params)
            with response:  # Leaving early closes the HTTP response, which cancels upstream.
                for chunk in response:
                    usage = chunk.usage or usage
                    for choice in chunk.choices:
                        if choice.index != 0:
                            continue
                        raw = choice.delta.content if self.api == "chat" else choice.text
                        piece = text.push(raw or "")
                        if piece:
                            yield TextDelta(piece)
                        finish = choice.finish_reason or finish
        yield Done(self._generation(text.text, usage, finish))
