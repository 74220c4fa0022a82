"""The `Reranker` role: a closer reading of the best retrieved chunks against the question.

Retrieval scores each chunk on its own vector or keywords; a reranker reads the question and the
passage together, which costs a model call per passage, so it only reorders the first few.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rag.models import ScoredChunk


class Reranker(Protocol):
    @property
    def model_id(self) -> str: ...

    def rerank(self, question: str, hits: Sequence[ScoredChunk], top_n: int) -> list[ScoredChunk]:
        """All of `hits`: the first `top_n` reordered best first, the rest after them as they
        were. Scores are left as retrieval gave them; the order is the reranker's."""
        ...


def reorder(hits: Sequence[ScoredChunk], top_n: int, scores: Sequence[float]) -> list[ScoredChunk]:
    """The first `top_n` hits sorted by `scores` (ties keep retrieval order), then the rest."""
    head = list(hits[:top_n])
    order = sorted(range(len(head)), key=lambda i: (-scores[i], i))
    return [*(head[i] for i in order), *hits[top_n:]]
