"""Anthropic's Messages API through the official `anthropic` SDK.

Our instructions go in `system`, the passages and the question in the one user turn, so the
document text never shares a turn with the rules. The stream is read event by event
(`message_start` carries the input tokens, `content_block_delta` the text, `message_delta` the
stop reason and output tokens). The SDK's retries are off: that is the router's decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.generation import Done, EventStream, TextDelta, TrimmedText, normalize_finish_reason
from rag.generation._sdk import SdkAdapter
from rag.generation.errors import sdk_errors
from rag.generation.prompts import render_chat_messages
from rag.models import Generation, GroundedPrompt

if TYPE_CHECKING:
    from anthropic import Anthropic

BACKEND = "anthropic"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"


class AnthropicGenerator(SdkAdapter["Anthropic"]):
    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str = ANTHROPIC_BASE_URL,
        model_id: str | None = None,
        max_tokens: int = 256,
        temperature: float | None = None,
        timeout_s: float = 60.0,
        backend: str = BACKEND,
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

    def _connect(self) -> Anthropic:
        from anthropic import Anthropic

        return Anthropic(
            api_key=self._api_key, base_url=self.base_url, timeout=self.timeout_s, max_retries=0
        )

    def ping(self) -> None:
        """The key works and the model exists (`GET /v1/models/{id}` costs no tokens)."""
        with sdk_errors(self.backend):
            self.client().models.retrieve(self.model)

    def _params(self, prompt: GroundedPrompt) -> dict[str, Any]:
        system, user = render_chat_messages(prompt)
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max(1, min(prompt.max_tokens, self.max_tokens)),
            "system": system["content"],
            "messages": [{"role": "user", "content": user["content"]}],
        }
        if self.temperature is not None:
            # Newer SDKs dropped the argument (recent models fix it); older models still read it.
            params["extra_body"] = {"temperature": self.temperature}
        return params

    def _generation(
        self, text: str, input_tokens: int, output_tokens: int, stop: str | None
    ) -> Generation:
        return Generation(
            text=text,
            model=self.model_id,
            prompt_tokens=input_tokens,
            completion_tokens=output_tokens,
            finish_reason=normalize_finish_reason(stop),
        )

    def generate(self, prompt: GroundedPrompt) -> Generation:
        client = self.client()
        with sdk_errors(self.backend):
            message = client.messages.create(**self._params(prompt))
            text = "".join(block.text for block in message.content if block.type == "text")
            return self._generation(
                text.strip(),
                message.usage.input_tokens,
                message.usage.output_tokens,
                message.stop_reason,
            )

    def stream(self, prompt: GroundedPrompt) -> EventStream:
        client = self.client()
        text = TrimmedText()
        input_tokens = output_tokens = 0
        stop: str | None = None
        with sdk_errors(self.backend):
            events: Any = client.messages.create(**self._params(prompt), stream=True)
            with events:  # Leaving early closes the HTTP response, which cancels upstream.
                for event in events:
                    if event.type == "message_start":
                        input_tokens = event.message.usage.input_tokens
                        output_tokens = event.message.usage.output_tokens
                    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                        piece = text.push(event.delta.text)
                        if piece:
                            yield TextDelta(piece)
                    elif event.type == "message_delta":
                        output_tokens = event.usage.output_tokens or output_tokens
                        input_tokens = getattr(event.usage, "input_tokens", None) or input_tokens
                        stop = event.delta.stop_reason or stop
        yield Done(self._generation(text.text, input_tokens, output_tokens, stop))
