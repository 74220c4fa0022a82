"""The `Generator` role: a grounded prompt in, a model's text out, whole or as a stream.

A stream yields `TextDelta`s as the model writes, then exactly one `Done` carrying the whole
`Generation`, whose text is the concatenation of the deltas. Closing the iterator early (the
consumer went away) closes the backend's stream too: the HTTP response, or llama.cpp's loop.
"""

from __future__ import annotations

from collections.abc import Generator as PyGenerator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from rag.errors import GenerationError
from rag.models import Generation, GroundedPrompt

if TYPE_CHECKING:
    from rag.generation.router import RouteRequest


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Done:
    generation: Generation


StreamEvent = TextDelta | Done
# A generator, not just an iterator: `close()` is how a consumer that went away cancels.
EventStream = PyGenerator[StreamEvent, None, None]


class Generator(Protocol):
    @property
    def model_id(self) -> str:
        """The pinned model recorded on every answer (name and exact version)."""
        ...

    def generate(self, prompt: GroundedPrompt) -> Generation: ...

    def stream(self, prompt: GroundedPrompt) -> EventStream: ...

    def ping(self) -> None:
        """Raise `BackendUnavailable` when the model cannot answer."""
        ...


class RoutedGenerator(Generator, Protocol):
    """The role answering depends on: a `Generator` that also routes. A `RouteRequest` (a
    model, or a policy of sensitivity, cost, latency and quality) chooses among models, with
    fallback; None takes the default policy. `rag.generation.router.Router` plays it for a
    catalog of one model or many."""

    def check(self, request: RouteRequest | None) -> None:
        """Raise `UnknownModel` for a model or policy it does not know, before any work."""
        ...

    def generate(self, prompt: GroundedPrompt, request: RouteRequest | None = None) -> Generation:
        """Whole, from the model the request's route picks (`Generation.route` says which)."""
        ...

    def stream(self, prompt: GroundedPrompt, request: RouteRequest | None = None) -> EventStream:
        """The route is planned now (a bad request fails before the first event)."""
        ...


def collect(events: Iterable[StreamEvent]) -> Generation:
    """The `Generation` a stream ends with; how `generate` is built on `stream`."""
    for event in events:
        if isinstance(event, Done):
            return event.generation
    raise GenerationError("the stream ended without a final generation")


class TrimmedText:
    """Turns raw deltas into ones whose concatenation equals the stripped full text.

    Answers are stored stripped, so leading whitespace is dropped and trailing whitespace is held
    back until more text follows it; what is held back at the end is never sent.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._pending = ""

    def push(self, raw: str) -> str:
        """The part of `raw` that can be sent now (maybe empty)."""
        if not self._parts and not self._pending:
            raw = raw.lstrip()
        text = self._pending + raw
        body = text.rstrip()
        self._pending = text[len(body) :]
        if body:
            self._parts.append(body)
        return body

    @property
    def text(self) -> str:
        return "".join(self._parts)


def normalize_finish_reason(reason: str | None) -> str | None:
    """Each vendor's stop reason in OpenAI's words: `stop`, `length`, `content_filter`..."""
    if reason is None:
        return None
    lowered = reason.lower()
    if lowered in {"end_turn", "stop_sequence", "stop", "eos"}:
        return "stop"
    if lowered in {"max_tokens", "length"}:
        return "length"
    if lowered in {"safety", "recitation", "blocklist", "prohibited_content", "refusal"}:
        return "content_filter"
    return lowered
