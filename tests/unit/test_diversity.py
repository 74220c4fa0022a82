"""Result diversity: a per-document cap and maximal marginal relevance, on hand-made hits."""

from __future__ import annotations

from rag.models import Chunk, ScoredChunk
from rag.retrieval import cap_per_document, maximal_marginal_relevance


def hit(doc: str, index: int, similarity: float, vector: list[float]) -> ScoredChunk:
    chunk = Chunk(id=f"{doc}{index}", document_id=doc, collection="c", index=index, text="t")
    return ScoredChunk(chunk=chunk, score=similarity, similarity=similarity, vector=vector)


def ids(hits: list[ScoredChunk]) -> list[str]:
    return [h.chunk.id for h in hits]


def test_cap_keeps_rank_order_and_drops_a_documents_extra_chunks() -> None:
    hits = [hit("a", i, 0.9 - i / 10, [1.0, 0.0]) for i in range(4)] + [hit("b", 0, 0.2, [0, 1])]
    assert ids(cap_per_document(hits, 2)) == ["a0", "a1", "b0"]


def test_mmr_trades_a_near_duplicate_for_a_different_passage() -> None:
    hits = [
        hit("a", 0, 0.90, [1.0, 0.0]),
        hit("a", 1, 0.89, [0.999, 0.045]),  # almost the same passage
        hit("b", 0, 0.70, [0.6, 0.8]),
    ]
    assert ids(maximal_marginal_relevance(hits, 2, 1.0)) == ["a0", "a1"]  # relevance only
    assert ids(maximal_marginal_relevance(hits, 2, 0.5)) == ["a0", "b0"]
    assert ids(maximal_marginal_relevance(hits, 3, 0.5)) == ["a0", "b0", "a1"]


def test_mmr_keeps_hits_without_vectors_after_the_ranked_ones() -> None:
    plain = ScoredChunk(
        chunk=Chunk(id="x", document_id="x", collection="c", index=0, text="t"), score=1.0
    )
    hits = [plain, hit("a", 0, 0.5, [1.0, 0.0])]
    assert ids(maximal_marginal_relevance(hits, 5, 0.7)) == ["a0", "x"]
