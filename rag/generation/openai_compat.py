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

from typing import TYPE_CHECKING, Any, Literal

from rag.errors import BackendError
from rag.generation import Done, EventStream, TextDelta, TrimmedText, normalize_finish_reason
from rag.generation._sdk import SdkAdapter
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


class OpenAICompatGenerator(SdkAdapter["OpenAI"]):
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
        super().__init__(
            model,
            backend=backend,
            base_url=base_url,
            api_key=api_key,
            model_id=model_id,
            max_tokens=max_tokens,
            temperature=temperature,
            timeout_s=timeout_s,
        )
        self.api: ApiKind = api
        self.max_tokens_field: MaxTokensField = max_tokens_field
        self.stream_usage = stream_usage
        # OpenAI itself needs a key; the self-hosted servers that copy its protocol don't.
        self.key_required = base_url == OPENAI_BASE_URL

    def _connect(self) -> OpenAI:
        from openai import OpenAI

        return OpenAI(
            api_key=self._api_key or NO_KEY,
            base_url=self.base_url,
            timeout=self.timeout_s,
            max_retries=0,
        )

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
