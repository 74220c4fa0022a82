"""Question → grounded answer with citations, or an honest "the documents don't say".

Grounding does not rest on the model's good will: we abstain without calling a model when no
passage is similar enough to the question, and every claim the model makes must be supported by
a passage we sent (checked by `rag.verification`, with the verifier the policy chooses) to
survive into the answer.
"""

from __future__ import annotations

import time
from collections.abc import Generator as PyGenerator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rag import metrics, tracing
from rag.errors import GenerationError
from rag.generation import Done, EventStream, RoutedGenerator, TextDelta
from rag.generation.model_catalog import DETERMINISTIC, Sensitivity
from rag.generation.router import RouteRequest
from rag.guard import InjectionPolicy, StreamRedactor, redact, redact_answer, screen_passages
from rag.models import (
    Answer,
    Generation,
    GroundedPrompt,
    Passage,
    ScoredChunk,
    Screened,
    Timings,
    Verification,
)
from rag.privacy.labels import labelled
from rag.retrieval import Retriever, SearchOptions
from rag.verification.check import check
from rag.verification.incremental import IncrementalCheck
from rag.verification.select import Verifiers
from rag.verification.text import model_markers

NOT_FOUND = "The documents do not answer this question."
DEGRADED_REASON = "no model could answer: the extractive fallback quoted the passages"
NO_RELEVANT_REASON = "no passage is relevant enough to the question"
ALL_DROPPED_REASON = "every relevant passage was left out: it held instruction-like text"
GIVEN_MODEL = "given"
"""The model recorded on an answer that was written elsewhere and only verified here."""


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    """Raw model text as it is written, before verification."""

    text: str


@dataclass(frozen=True, slots=True)
class AnswerDone:
    """The checked answer. `revised` is true when it differs from the streamed text, because
    unsupported claims were dropped or the answer became "not found"."""

    answer: Answer
    revised: bool


@dataclass(frozen=True, slots=True)
class VerifiedDelta:
    """Verified text to append to what was shown (`stream(verified=True)`): whole sentences, or
    the supported clauses of one, never taken back by the final answer."""

    text: str
    cited: str = ""  # the same text with its citation markers (`Answer.cited_answer`)


AnswerEvent = AnswerDelta | VerifiedDelta | AnswerDone
AnswerStream = PyGenerator[AnswerEvent, None, None]


@dataclass
class _Prepared:
    start: float
    retrieval_ms: float
    relevant: list[ScoredChunk]
    prompt: GroundedPrompt
    route: RouteRequest | None
    screened: Screened | None = None


class Answerer:
    def __init__(
        self,
        retriever: Retriever,
        generator: RoutedGenerator,
        verifiers: Verifiers,
        *,
        min_similarity: float,
        max_tokens: int,
        injection: InjectionPolicy = "defuse",
        sensitivity: Mapping[str, Sensitivity] | None = None,
    ):
        self.retriever = retriever
        self.generator = generator
        self.verifiers = verifiers
        self.min_similarity = min_similarity
        self.max_tokens = max_tokens
        self.injection: InjectionPolicy = injection
        self.sensitivity = dict(sensitivity or {})  # collection → label (rag.privacy.labels)

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
        route = labelled(route, self.sensitivity, collection)
        self.generator.check(route)  # refused even when no model is needed
        prepared = self._prepare(collection, question, options, access, route)
        if isinstance(prepared, Answer):
            return prepared
        gen_start = time.perf_counter()
        with tracing.span("generate") as span:
            generation = self.generator.generate(prepared.prompt, route)
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
        verified: bool = False,
    ) -> AnswerStream:
        """Retrieves and picks the model now (so a bad request fails before anything is sent),
        then returns the events: `AnswerDelta`s (the model's raw text) or, with `verified`,
        `VerifiedDelta`s (only text that passed verification, sentence by sentence; all at the
        end when a model verifies, as it judges the whole answer), then one `AnswerDone`. An
        error after the first delta is raised from the iterator; closing it closes the model's
        stream."""
        route = labelled(route, self.sensitivity, collection)
        self.generator.check(route)  # refused even when no model is needed
        prepared = self._prepare(collection, question, options, access, route)
        if isinstance(prepared, Answer):
            return _only(prepared)
        events = self.generator.stream(prepared.prompt, route)
        incremental = None
        if verified and self.verifiers.requested(route) == DETERMINISTIC:
            incremental = IncrementalCheck(
                prepared.relevant, self.verifiers.deterministic, prepared.prompt.question
            )
        return self._relay(prepared, events, verified, incremental)

    def passages(
        self,
        collection: str | Sequence[str],
        question: str,
        options: SearchOptions | None = None,
        access: Sequence[str] | None = None,
    ) -> list[ScoredChunk]:
        """What a model is shown for `question`: the hits similar enough to it, best first."""
        collections = [collection] if isinstance(collection, str) else list(collection)
        hits = self.retriever.retrieve_many(collections, question, options, access=access)
        return [h for h in hits if (h.similarity or 0.0) >= self.min_similarity]

    def verify(
        self,
        question: str,
        answer_text: str,
        passages: list[ScoredChunk],
        *,
        route: RouteRequest | None = None,
        model: str = GIVEN_MODEL,
    ) -> Answer:
        """Check an answer written elsewhere (a reference answer, another system's) against
        `passages` exactly as if a model had written it: `rag eval answers --oracle`."""
        if not passages:
            return _abstain(question, NO_RELEVANT_REASON, time.perf_counter(), 0.0)
        prompt = GroundedPrompt(
            question=question,
            passages=[_passage(i, hit) for i, hit in enumerate(passages, start=1)],
            max_tokens=self.max_tokens,
        )
        prepared = _Prepared(time.perf_counter(), 0.0, passages, prompt, route)
        return self._finish(prepared, Generation(text=answer_text, model=model), 0.0)

    def _relay(
        self,
        prepared: _Prepared,
        events: EventStream,
        verified: bool,
        incremental: IncrementalCheck | None,
    ) -> AnswerStream:
        gen_start = time.perf_counter()
        span = tracing.start_span("generate", streamed=True)
        cited = ""  # the verified text sent so far, with its citation markers
        secrets = StreamRedactor()  # raw text: a key split over deltas is held back whole
        try:
            for event in events:
                if isinstance(event, TextDelta) and not verified:
                    if safe := secrets.feed(event.text):
                        yield AnswerDelta(safe)
                elif isinstance(event, TextDelta) and incremental is not None:
                    if shown := incremental.feed(event.text):
                        marked = incremental.shown_marked
                        # Verified text comes in whole sentences: a key is never split.
                        yield VerifiedDelta(_redacted(shown), _redacted(marked[len(cited) :]))
                        cited = marked
                elif isinstance(event, Done):
                    generation = event.generation
                    span.set_attribute("rag.model", generation.model)
                    elapsed = time.perf_counter() - gen_start
                    answer = self._finish(prepared, generation, elapsed, incremental)
                    streamed = generation.text
                    if not verified and (tail := secrets.flush()):
                        yield AnswerDelta(tail)
                    if verified:
                        rest = incremental.rest if incremental else answer.answer
                        if answer.answerable and rest:
                            whole = answer.cited_answer
                            cited = _redacted(cited)
                            rest_cited = whole[len(cited) :] if whole.startswith(cited) else rest
                            yield VerifiedDelta(_redacted(rest), _redacted(rest_cited))
                        streamed = incremental.shown if incremental else answer.answer
                        streamed = streamed if answer.answerable else ""
                    revised = answer.answer != _redacted(streamed)
                    yield AnswerDone(answer, revised=revised)
                    return
            raise GenerationError("the model's stream ended without a final generation")
        finally:
            events.close()
            span.end()

    def _prepare(
        self,
        collection: str | Sequence[str],
        question: str,
        options: SearchOptions | None,
        access: Sequence[str] | None,
        route: RouteRequest | None,
    ) -> _Prepared | Answer:
        start = time.perf_counter()
        relevant = self.passages(collection, question, options, access)
        retrieval_ms = (time.perf_counter() - start) * 1000
        # Screened before the prompt is built: the model and the verifier see the same text.
        relevant, screened = screen_passages(relevant, self.injection)
        if screened is not None:
            metrics.observe_screening(screened.flagged, screened.defused, screened.dropped)
        if not relevant:
            reason = ALL_DROPPED_REASON if screened and screened.dropped else NO_RELEVANT_REASON
            answer = _abstain(question, reason, start, retrieval_ms)
            answer.screened = screened
            metrics.observe_answer(answer)
            return answer
        prompt = GroundedPrompt(
            question=question,
            passages=[_passage(i, hit) for i, hit in enumerate(relevant, start=1)],
            max_tokens=self.max_tokens,
        )
        return _Prepared(start, retrieval_ms, relevant, prompt, route, screened)

    def _finish(
        self,
        prepared: _Prepared,
        generation: Generation,
        generation_s: float,
        incremental: IncrementalCheck | None = None,
    ) -> Answer:
        """`incremental`: the checks made while a verified stream was written (deterministic)."""
        question = prepared.prompt.question
        choice = self.verifiers.choose(prepared.route, generation.route)
        verify_start = time.perf_counter()
        with tracing.span("verify") as span:
            if incremental is not None:
                checked = incremental.finish(generation.text)
            else:
                checked = check(generation.text, prepared.relevant, choice.verifier, question)
            span.set_attribute("rag.verifier", checked.verifier)
        verification_ms = (time.perf_counter() - verify_start) * 1000
        if incremental is not None:  # the checks made while the answer streamed count too
            verification_ms = incremental.spent_s * 1000
        reason = checked.reason
        if reason is None and generation.route is not None and generation.route.degraded:
            reason = DEGRADED_REASON
        route = generation.route
        if route is not None:
            route = route.model_copy(
                update={"verifier": checked.verifier, "screened": prepared.screened}
            )
        valid, invented = model_markers(generation.text, len(prepared.relevant))
        answer = Answer(
            question=question,
            answer=checked.answer if checked.answerable else NOT_FOUND,
            answerable=checked.answerable,
            citations=checked.citations,
            cited_answer=checked.marked if checked.answerable else NOT_FOUND,
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
                verification_ms=verification_ms,
                total_ms=(time.perf_counter() - prepared.start) * 1000,
            ),
            route=route,
            verification=Verification(
                verifier=checked.verifier,
                requested=choice.requested,
                fallback=choice.fallback or checked.fallback,
                claims=checked.claims,
                latency_ms=round(verification_ms, 2),
            ),
            unsupported=checked.unsupported,
            screened=prepared.screened if route is None else None,
        )
        answer = redact_answer(answer)  # no secret-shaped string leaves, whatever its source
        metrics.observe_redactions(answer.redacted)
        metrics.observe_answer(answer)
        return answer


def _redacted(text: str) -> str:
    return redact(text)[0]


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
        cited_answer=NOT_FOUND,
        model=None,
        reason=reason,
        timings=Timings(retrieval_ms=retrieval_ms, total_ms=(time.perf_counter() - start) * 1000),
    )
