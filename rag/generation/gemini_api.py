"""Google Gemini through the official `google-genai` SDK (the Gemini Developer API).

Our instructions go in `system_instruction`, the passages and question in the user content.
`generate` calls `generateContent`, `stream` calls `streamGenerateContent?alt=sse`. The SDK's own
retries stay off (the router decides); `base_url` points it at another endpoint, e.g. a proxy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.generation import Done, EventStream, TextDelta, TrimmedText, normalize_finish_reason
from rag.generation._sdk import SdkAdapter
from rag.generation.errors import sdk_errors
from rag.generation.prompts import render_chat_messages
from rag.models import Generation, GroundedPrompt

if TYPE_CHECKING:
    from google.genai import Client, types

BACKEND = "gemini"


class GeminiGenerator(SdkAdapter["Client"]):
    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model_id: str | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
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

    def _connect(self) -> Client:
        from google.genai import Client, types

        options = types.HttpOptions(base_url=self.base_url, timeout=int(self.timeout_s * 1000))
        return Client(api_key=self._api_key, http_options=options)

    def ping(self) -> None:
        """The key works and the model exists (`GET models/{model}` costs no tokens)."""
        with sdk_errors(self.backend):
            self.client().models.get(model=self.model)

    def _request(self, prompt: GroundedPrompt) -> tuple[str, types.GenerateContentConfig]:
        from google.genai import types

        system, user = render_chat_messages(prompt)
        config = types.GenerateContentConfig(
            system_instruction=system["content"],
            max_output_tokens=max(1, min(prompt.max_tokens, self.max_tokens)),
            temperature=self.temperature,
        )
        return user["content"], config

    def _generation(self, text: str, usage: Any, finish_reason: Any) -> Generation:
        reason = getattr(finish_reason, "value", finish_reason)
        return Generation(
            text=text,
            model=self.model_id,
            prompt_tokens=int(getattr(usage, "prompt_token_count", 0) or 0),
            completion_tokens=int(getattr(usage, "candidates_token_count", 0) or 0),
            finish_reason=normalize_finish_reason(str(reason) if reason else None),
        )

    @staticmethod
    def _text(response: Any) -> str:
        """The first candidate's text parts; `response.text` warns on other parts."""
        candidates = response.candidates or []
        content = candidates[0].content if candidates else None
        parts = (content.parts if content else None) or []
        return "".join(part.text for part in parts if part.text and not part.thought)

    @staticmethod
    def _finish(response: Any) -> Any:
        candidates = response.candidates or []
        return candidates[0].finish_reason if candidates else None

    def generate(self, prompt: GroundedPrompt) -> Generation:
        client = self.client()
        contents, config = self._request(prompt)
        with sdk_errors(self.backend):
            response = client.models.generate_content(
                model=self.model, contents=contents, config=config
            )
            return self._generation(
                self._text(response).strip(), response.usage_metadata, self._finish(response)
            )

    def stream(self, prompt: GroundedPrompt) -> EventStream:
        client = self.client()
        contents, config = self._request(prompt)
        text = TrimmedText()
        usage: Any = None
        finish: Any = None
        with sdk_errors(self.backend):
            chunks = client.models.generate_content_stream(
                model=self.model, contents=contents, config=config
            )
            try:
                for chunk in chunks:
                    usage = chunk.usage_metadata or usage
                    finish = self._finish(chunk) or finish
                    piece = text.push(self._text(chunk))
                    if piece:
                        yield TextDelta(piece)
            finally:
                # A generator underneath: closing it closes the HTTP response, cancelling upstream.
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        yield Done(self._generation(text.text, usage, finish))
