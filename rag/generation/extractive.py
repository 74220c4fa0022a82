"""An answer without a language model: the passage sentences that best match the question.

This is the last link of a fallback chain: it costs nothing, sends nothing anywhere, and every
sentence it returns is a passage's own words followed by that passage's `[n]`, so it passes the
verification by construction. Matching uses the same normalised content words as
`rag.verification`, weighted by how rare each word is among the candidate sentences (a word every
passage shares says little), plus embedding similarity when an embedder is given. When no
sentence covers enough of the question it says "I don't know.", which `rag.verification` reads as
an abstention, so the answer is reported as unanswerable rather than made up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rag.embedding import Embedder
from rag.generation import Done, EventStream, TextDelta
from rag.generation.prompts import ABSTAIN_REPLY
from rag.models import Generation, GroundedPrompt
from rag.verification.text import content_terms, question_content_terms, split_sentences

MODEL_ID = "extractive@1"
HEADING_WEIGHT = 0.5
"""A question word found only in the passage's title or section counts this much."""


@dataclass
class Sentence:
    """A passage sentence and how well it matches the question, in [0, 1]."""

    marker: int
    rank: int
    sentence: str
    terms: set[str]
    heading: set[str]
    score: float = 0.0


def _cite(sentence: str, marker: int) -> str:
    """`[n]` goes before the closing punctuation: "… in Rust [1]."."""
    body = sentence.rstrip()
    end = len(body)
    while end and body[end - 1] in ".!?;:":
        end -= 1
    return f"{body[:end]} [{marker}]{body[end:] or '.'}"


class ExtractiveGenerator:
    """Thread-safe and stateless; `embedder`, when given, must be thread-safe too."""

    def __init__(
        self,
        *,
        max_sentences: int = 2,
        min_score: float = 0.5,
        embedder: Embedder | None = None,
        semantic_weight: float = 0.4,
    ) -> None:
        if not 0 <= semantic_weight <= 1:
            raise ValueError("semantic_weight must be within [0, 1]")
        self.max_sentences = max_sentences
        self.min_score = min_score
        self.embedder = embedder
        self.semantic_weight = semantic_weight if embedder else 0.0

    @property
    def model_id(self) -> str:
        return MODEL_ID

    def ping(self) -> None:
        """Nothing can be down."""

    def _candidates(self, prompt: GroundedPrompt) -> list[Sentence]:
        found: list[Sentence] = []
        for rank, passage in enumerate(prompt.passages):
            heading = set(content_terms(f"{passage.title} {passage.section or ''}"))
            for sentence in split_sentences(passage.text):
                terms = set(content_terms(sentence))
                if terms:
                    found.append(Sentence(passage.marker, rank, sentence, terms, heading))
        return found

    def select(self, prompt: GroundedPrompt) -> list[Sentence]:
        """The best matching sentences, best first; empty when none covers the question."""
        question = question_content_terms(prompt.question)
        candidates = self._candidates(prompt)
        if not question or not candidates:
            return []
        count = len(candidates)
        weight = {
            term: math.log(1 + count / (1 + sum(term in c.terms for c in candidates)))
            for term in question
        }
        total = sum(weight.values())
        for c in candidates:
            inside = sum(w for t, w in weight.items() if t in c.terms)
            heading = sum(w for t, w in weight.items() if t in c.heading and t not in c.terms)
            c.score = (inside + HEADING_WEIGHT * heading) / total if inside else 0.0
        if self.embedder is not None:
            vectors = np.asarray(
                self.embedder.embed_documents([prompt.question, *(c.sentence for c in candidates)])
            )
            norms = np.maximum(np.linalg.norm(vectors, axis=1), 1e-12)
            cosines = (vectors[1:] @ vectors[0]) / (norms[1:] * norms[0])
            for c, cosine in zip(candidates, cosines.tolist(), strict=True):
                semantic = max(cosine, 0.0)
                if c.score:
                    c.score = (1 - self.semantic_weight) * c.score + self.semantic_weight * semantic
        ranked = sorted(
            (c for c in candidates if c.score >= self.min_score),
            key=lambda c: (-c.score, c.rank),
        )
        chosen: list[Sentence] = []
        for c in ranked:
            if all(c.sentence != other.sentence for other in chosen):
                chosen.append(c)
            if len(chosen) == self.max_sentences:
                break
        return chosen

    def _pieces(self, prompt: GroundedPrompt) -> list[str]:
        chosen = self.select(prompt)
        if not chosen:
            return [ABSTAIN_REPLY]
        cited = [_cite(c.sentence, c.marker) for c in chosen]
        return [cited[0], *(f" {piece}" for piece in cited[1:])]

    def _generation(self, pieces: list[str]) -> Generation:
        return Generation(text="".join(pieces), model=MODEL_ID, finish_reason="stop")

    def generate(self, prompt: GroundedPrompt) -> Generation:
        return self._generation(self._pieces(prompt))

    def stream(self, prompt: GroundedPrompt) -> EventStream:
        pieces = self._pieces(prompt)
        for piece in pieces:
            yield TextDelta(piece)
        yield Done(self._generation(pieces))
