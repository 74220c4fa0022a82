from __future__ import annotations

from rag.models import Chunk, ScoredChunk
from rag.reranking import reorder


def hit(n: int) -> ScoredChunk:
    chunk = Chunk(id=f"c{n}", document_id=f"d{n}", collection="c", index=0, text=f"text {n}")
    return ScoredChunk(chunk=chunk, score=1.0 / (n + 1))


def test_only_the_first_n_are_reordered_and_the_rest_keep_their_place() -> None:
    hits = [hit(n) for n in range(5)]
    ranked = reorder(hits, 3, [0.1, 0.9, 0.5])
    assert [h.chunk.id for h in ranked] == ["c1", "c2", "c0", "c3", "c4"]
    assert ranked[0].score == hits[1].score  # scores stay retrieval's; the order is the reranker's


def test_ties_keep_retrieval_order() -> None:
    hits = [hit(n) for n in range(3)]
    assert [h.chunk.id for h in reorder(hits, 3, [0.0, 0.0, 0.0])] == ["c0", "c1", "c2"]
