"""OpenAI's chat-completions wire format, as much of it as /openai/v1 reads and writes.

Requests allow fields we do not use (clients send `temperature`, `user`, `seed`, …): the
answer's wording is ours to verify, so sampling knobs are ignored rather than refused. What
would change the meaning of the request (`n` > 1, tools, images) is refused with a clear 400.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.errors import InvalidInput
from rag.models import Answer, Citation

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[ContentPart] | None = None

    def text(self, index: int) -> str:
        """The message's text; a part that is not text (an image, audio, a file) is refused."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        for part in self.content:
            if part.type != "text" or part.text is None:
                raise InvalidInput(
                    f"messages[{index}].content: {part.type!r} parts are not supported; "
                    "this model reads text only"
                )
        return "\n".join(part.text or "" for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """`model`: a collection, an alias for several (`openai_api.aliases`), optionally with a
    routing policy: `handbook`, `handbook@confidential` (GET /openai/v1/models)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, examples=["handbook"])
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, description="Choices to write: 1 (one verified answer).")
    tools: list[Any] | None = Field(default=None, description="Not supported.")

    def conversation(self) -> tuple[str, list[str]]:
        """The question (the last message, the user's) and the user's earlier messages."""
        if self.n != 1:
            raise InvalidInput("n must be 1: one verified answer per request")
        if self.tools:
            raise InvalidInput("tools are not supported: the answer comes from the documents")
        texts = [(m.role, m.text(i)) for i, m in enumerate(self.messages)]
        role, question = texts[-1]
        if role != "user" or not question.strip():
            raise InvalidInput("the last message must be the user's question, with text")
        return question, [t for r, t in texts[:-1] if r == "user" and t.strip()]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "rag"


class ModelPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def completion_id() -> tuple[str, int]:
    return f"chatcmpl-{uuid.uuid4().hex}", int(time.time())


def footnotes(citations: list[Citation]) -> str:
    """The citations as numbered lines after the answer, for clients that only show text."""
    lines = []
    for c in citations:
        where = c.source + (f", page {c.page}" if c.page is not None else "")
        title = f"{c.title} — " if c.title and c.title != c.source else ""
        lines.append(f"[{c.marker}] {title}{where}")
    return "\n\nSources:  \n" + "  \n".join(lines) if lines else ""


def extension(answer: Answer) -> dict[str, Any]:
    """What OpenAI's format has no field for: the citations, structured, and how we answered."""
    return {
        "citations": [c.model_dump(mode="json") for c in answer.citations],
        "rag": {
            "answer_id": answer.answer_id,  # what POST /v1/feedback rates
            "model": answer.model,
            "answerable": answer.answerable,
            "reason": answer.reason,
            "route": answer.route.model_dump(mode="json") if answer.route else None,
        },
    }


def usage(answer: Answer) -> dict[str, int]:
    prompt = answer.usage.get("prompt_tokens", 0)
    written = answer.usage.get("completion_tokens", 0)
    return {"prompt_tokens": prompt, "completion_tokens": written, "total_tokens": prompt + written}


def completion(answer: Answer, model: str) -> dict[str, Any]:
    ident, created = completion_id()
    return {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": answer.model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": (answer.cited_answer or answer.answer) + footnotes(answer.citations),
                    "refusal": None,
                },
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": usage(answer),
        **extension(answer),
    }


class ChunkWriter:
    """`chat.completion.chunk` objects of one streamed completion."""

    def __init__(self, model: str):
        self.id, self.created = completion_id()
        self.model = model

    def chunk(
        self, delta: dict[str, Any], finish: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": extra.pop("system_fingerprint", None),
            "choices": [choice],
            **extra,
        }

    def usage(self, answer: Answer) -> dict[str, Any]:
        return self.chunk({}) | {"choices": [], "usage": usage(answer)}
