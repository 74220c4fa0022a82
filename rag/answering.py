"""Question → grounded answer with citations, or an honest "the documents don't say".

Grounding does not rest on the model's good will: we abstain without calling a model when no
passage is similar enough to the question, and every sentence the model returns must be
supported by a passage we sent (checked by `rag.grounding`) to survive into the answer.
"""

from __future__ import annotations

import time

from rag.config import RetrievalMode
from rag.embedding import Embedder
from rag.generation import Generator
from rag.grounding import attribute
from rag.models import Answer, GroundedPrompt, Passage, ScoredChunk, Timings
from rag.retrieval import Retriever
from rag.stores import MetadataFilter

NOT_FOUND = "The documents do not answer this question."


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
        collection: str,
        question: str,
        *,
        top_k: int,
        mode: RetrievalMode,
        filters: MetadataFilter | None = None,
    ) -> Answer:
        start = time.perf_counter()
        hits = self.retriever.retrieve(
            collection, question, top_k=top_k, mode=mode, filters=filters
        )
        retrieval_ms = (time.perf_counter() - start) * 1000
        relevant = [h for h in hits if (h.similarity or 0.0) >= self.min_similarity]
        if not relevant:
            return _abstain(
                question, "no passage is relevant enough to the question", start, retrieval_ms
            )
        prompt = GroundedPrompt(
            question=question,
            passages=[_passage(i, hit) for i, hit in enumerate(relevant, start=1)],
            max_tokens=self.max_tokens,
        )
        gen_start = time.perf_counter()
        generation = self.generator.generate(prompt)
        generation_ms = (time.perf_counter() - gen_start) * 1000
        grounding = attribute(
            generation.text,
            relevant,
            self.embedder,
            threshold=self.support_threshold,
            question=question,
        )
        return Answer(
            question=question,
            answer=grounding.answer if grounding.answerable else NOT_FOUND,
            answerable=grounding.answerable,
            citations=grounding.citations if grounding.answerable else [],
            model=generation.model,
            reason=grounding.reason,
            usage={
                "prompt_tokens": generation.prompt_tokens,
                "completion_tokens": generation.completion_tokens,
            },
            timings=Timings(
                retrieval_ms=retrieval_ms,
                generation_ms=generation_ms,
                total_ms=(time.perf_counter() - start) * 1000,
            ),
        )


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
