"""Question → grounded answer with citations, or an honest "the documents don't say".

Grounding does not rest on the model's good will: we abstain without calling a model when no
passage is similar enough to the question, and every sentence the model returns must be
supported by a passage we sent (checked by `rag.grounding`) to survive into the answer.
"""

from __future__ import annotations

import time
from collections.abc import Generator as PyGenerator
from collections.abc import Sequence
from dataclasses import dataclass

from rag import metrics, tracing
from rag.embedding import Embedder
from rag.errors import GenerationError, InvalidInput
from rag.generation import Done, EventStream, Generator, TextDelta
from rag.generation.router import Router, RouteRequest
from rag.grounding import attribute, model_markers
from rag.models import Answer, Generation, GroundedPrompt, Passage, ScoredChunk, Timings
from rag.retrieval import Retriever, SearchOptions

NOT_FOUND = "The documents do not answer this question."
DEGRADED_REASON = "no model could answer: the extractive fallback quoted the passages"


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    """Raw model text as it is written, before the grounding check."""

    text: str


@dataclass(frozen=True, slots=True)
class AnswerDone:
    """The checked answer. `revised` is true when it differs from the streamed text, because
    unsupported sentences were dropped or the answer became "not found"."""

    answer: Answer
    revised: bool


AnswerEvent = AnswerDelta | AnswerDone
AnswerStream = PyGenerator[AnswerEvent, None, None]


@dataclass
class _Prepared:
    start: float
    retrieval_ms: float
    relevant: list[ScoredChunk]
    prompt: GroundedPrompt


class Answerer:
    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        embedder: Embedder,
        *,
        min_similarity: float,
        support_threshold: float,
        max_tokens: int,
    ):
        self.retriever = retriever
        self.generator = generator
        self.embedder = embedder
        self.min_similarity = min_similarity
        self.support_threshold = support_threshold
        self.max_tokens = max_tokens

    def answer(
        self,
        collection: str | Sequence[str],
        question: str,
        options: SearchOptions | None = None,
        *,
        route: RouteRequest | None = None,
        access: Sequence[str] | None = None,
    ) -> Answer:
        """`collection`: one, or several searched together. `route` names a model or a policy
        (see rag.generation.router); None = the default. `access`: the caller's access tokens
        (rag.access); None = every document."""
        self._check_route(route)
        prepared = self._prepare(collection, question, options, access)
        if isinstance(prepared, Answer):
            return prepared
        gen_start = time.perf_counter()
        with tracing.span("generate") as span:
            if isinstance(self.generator, Router):
                generation = self.generator.generate(prepared.prompt, route)
            else:
                self._no_routing(route)
                generation = self.generator.generate(prepared.prompt)
            span.set_attribute("rag.model", generation.model)
        return self._finish(prepared, generation, time.perf_counter() - gen_start)

    def stream(
        self,
        collection: str | Sequence[str],
        question: str,
        options: SearchOptions | None = None,
        *,
        route: RouteRequest | None = None,
        access: Sequence[str] | None = None,
    ) -> AnswerStream:
        """Retrieves and picks the model now (so a bad request fails before anything is sent),
        then returns the events: `AnswerDelta`s, then one `AnswerDone`. An error after the first
        delta is raised from the iterator; closing it closes the model's stream."""
        self._check_route(route)
        prepared = self._prepare(collection, question, options, access)
        if isinstance(prepared, Answer):
            return _only(prepared)
        if isinstance(self.generator, Router):
            events = self.generator.run(
                self.generator.plan(prepared.prompt, route), prepared.prompt
            )
        else:
            self._no_routing(route)
            events = self.generator.stream(prepared.prompt)
        return self._relay(prepared, events)

    def _relay(self, prepared: _Prepared, events: EventStream) -> AnswerStream:
        gen_start = time.perf_counter()
        span = tracing.start_span("generate", streamed=True)
        try:
            for event in events:
                if isinstance(event, TextDelta):
                    yield AnswerDelta(event.text)
                elif isinstance(event, Done):
                    generation = event.generation
                    span.set_attribute("rag.model", generation.model)
                    answer = self._finish(prepared, generation, time.perf_counter() - gen_start)
                    yield AnswerDone(answer, revised=answer.answer != generation.text)
                    return
            raise GenerationError("the model's stream ended without a final generation")
        finally:
            events.close()
            span.end()

    def _check_route(self, route: RouteRequest | None) -> None:
        """A bad model or policy name is refused even when no model would be needed."""
        if isinstance(self.generator, Router):
            self.generator.check(route)
        else:
            self._no_routing(route)

    @staticmethod
    def _no_routing(route: RouteRequest | None) -> None:
        if route is not None and (route.model or route.policy):
            raise InvalidInput("this service has one model and no catalog: omit model and policy")

    def _prepare(
        self,
        collection: str | Sequence[str],
        question: str,
        options: SearchOptions | None,
        access: Sequence[str] | None,
    ) -> _Prepared | Answer:
        start = time.perf_counter()
        collections = [collection] if isinstance(collection, str) else list(collection)
        hits = self.retriever.retrieve_many(collections, question, options, access=access)
        retrieval_ms = (time.perf_counter() - start) * 1000
        relevant = [h for h in hits if (h.similarity or 0.0) >= self.min_similarity]
        if not relevant:
            answer = _abstain(
                question, "no passage is relevant enough to the question", start, retrieval_ms
            )
            metrics.observe_answer(answer)
            return answer
        prompt = GroundedPrompt(
            question=question,
            passages=[_passage(i, hit) for i, hit in enumerate(relevant, start=1)],
            max_tokens=self.max_tokens,
        )
        return _Prepared(start, retrieval_ms, relevant, prompt)

    def _finish(self, prepared: _Prepared, generation: Generation, generation_s: float) -> Answer:
        question = prepared.prompt.question
        grounding = attribute(
            generation.text,
            prepared.relevant,
            self.embedder,
            threshold=self.support_threshold,
            question=question,
        )
        reason = grounding.reason
        if reason is None and generation.route is not None and generation.route.degraded:
            reason = DEGRADED_REASON
        valid, invented = model_markers(generation.text, len(prepared.relevant))
        answer = Answer(
            question=question,
            answer=grounding.answer if grounding.answerable else NOT_FOUND,
            answerable=grounding.answerable,
            citations=grounding.citations if grounding.answerable else [],
            model=generation.model,
            model_cited=bool(valid),
            invented_markers=invented,
            reason=reason,
            usage={
                "prompt_tokens": generation.prompt_tokens,
                "completion_tokens": generation.completion_tokens,
            },
            timings=Timings(
                retrieval_ms=prepared.retrieval_ms,
                generation_ms=generation_s * 1000,
                total_ms=(time.perf_counter() - prepared.start) * 1000,
            ),
            route=generation.route,
        )
        metrics.observe_answer(answer)
        return answer


def _only(answer: Answer) -> AnswerStream:
    yield AnswerDone(answer, revised=False)


def _passage(marker: int, hit: ScoredChunk) -> Passage:
    return Passage(
        marker=marker, text=hit.chunk.text, title=hit.chunk.title, section=hit.chunk.section
    )


def _abstain(question: str, reason: str, start: float, retrieval_ms: float) -> Answer:
    return Answer(
        question=question,
        answer=NOT_FOUND,
        answerable=False,
        citations=[],
        model=None,
        reason=reason,
        timings=Timings(retrieval_ms=retrieval_ms, total_ms=(time.perf_counter() - start) * 1000),
    )
