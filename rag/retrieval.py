"""Question → scored chunks from one collection: dense, keyword or hybrid (Qdrant fusion),
filtered on metadata, optionally reranked by a model reading each passage with the question,
then diversified so one document cannot fill every slot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from rag import metrics, tracing
from rag.access import readable_by
from rag.collections import Catalog
from rag.config import Fusion, RetrievalMode, RetrievalSettings
from rag.embedding import Embedder
from rag.errors import InvalidInput
from rag.filters import parse_filters
from rag.models import ScoredChunk, SparseVector
from rag.reranking import Reranker
from rag.sparse import Bm25Encoder
from rag.stores import VectorStore

# Diversifying picks from more candidates than it returns.
CANDIDATE_FACTOR = 4
# How many candidates a request that asks for reranking gets when none are configured.
DEFAULT_RERANK_TOP_N = 20


class SearchOptions(BaseModel):
    """Per-request retrieval choices; an unset field takes the configured default."""

    top_k: int | None = Field(default=None, ge=1, description="Chunks to return.")
    mode: RetrievalMode | None = Field(default=None, description="dense, sparse or hybrid.")
    fusion: Fusion | None = Field(default=None, description="Hybrid fusion: rrf or dbsf.")
    filters: dict[str, Any] | None = Field(
        default=None,
        description='All must hold: {"source": "a.pdf", "team": ["hr", "legal"], '
        '"page": {"gte": 2}, "published": {"gte": "2024-01-01", "lt": "2025-01-01"}}',
    )
    max_per_document: int | None = Field(
        default=None, ge=0, description="At most this many chunks per document; 0 = no cap."
    )
    mmr_lambda: float | None = Field(
        default=None, ge=0.0, le=1.0, description="MMR trade-off, 1 = relevance only."
    )
    rerank: bool | None = Field(
        default=None,
        description="Rerank the best candidates with the local model (slower: a model call per "
        "passage); unset = as configured.",
    )


class Retriever:
    def __init__(
        self,
        catalog: Catalog,
        embedder: Embedder,
        sparse: Bm25Encoder,
        store: VectorStore,
        defaults: RetrievalSettings,
        reranker: Reranker | None = None,
    ):
        self.catalog = catalog
        self.embedder = embedder
        self.sparse = sparse
        self.store = store
        self.defaults = defaults
        self.reranker = reranker

    @property
    def max_top_k(self) -> int:
        return self.defaults.max_top_k

    def retrieve(
        self,
        collection: str,
        question: str,
        options: SearchOptions | None = None,
        *,
        access: Sequence[str] | None = None,
    ) -> list[ScoredChunk]:
        """`access`: the caller's tokens (rag.access), applied inside the search so top-k is
        filled from readable chunks only; None = no restriction (admin, or auth off)."""
        return self._retrieve([collection], question, options or SearchOptions(), access)

    def retrieve_many(
        self,
        collections: Sequence[str],
        question: str,
        options: SearchOptions | None = None,
        *,
        access: Sequence[str] | None = None,
    ) -> list[ScoredChunk]:
        """The best chunks over several collections, merged by their cosine similarity to the
        question (one embedder serves every collection, so similarities compare)."""
        return self._retrieve(collections, question, options or SearchOptions(), access)

    def _retrieve(
        self,
        collections: Sequence[str],
        question: str,
        o: SearchOptions,
        access: Sequence[str] | None,
    ) -> list[ScoredChunk]:
        top_k = o.top_k or self.defaults.top_k
        if not question.strip():
            raise InvalidInput("the question is empty")
        if not 1 <= top_k <= self.defaults.max_top_k:
            raise InvalidInput(
                f"top_k must be between 1 and {self.defaults.max_top_k} (retrieval.max_top_k)"
            )
        with (
            tracing.span("retrieve", collection=",".join(collections)),
            metrics.RETRIEVAL_DURATION.time(),
        ):
            # The question is embedded once, whatever the number of collections searched.
            dense, sparse = self.embedder.embed_query(question), self.sparse.encode_query(question)
            if len(collections) == 1:
                return self._search(collections[0], question, dense, sparse, o, access)
            hits = [
                h for c in collections for h in self._search(c, question, dense, sparse, o, access)
            ]
            hits.sort(key=lambda h: h.similarity or 0.0, reverse=True)
            return hits[:top_k]

    def _search(
        self,
        collection: str,
        question: str,
        dense: list[float],
        sparse: SparseVector,
        o: SearchOptions,
        access: Sequence[str] | None,
    ) -> list[ScoredChunk]:
        """One collection: filters, candidates, reranking, diversity, top-k."""
        d = self.defaults
        top_k = o.top_k or d.top_k
        # Unknown collection → NotFoundError; only fields of documents the caller may read.
        fields = self.catalog.metadata_fields(collection, access)
        conditions = parse_filters(o.filters, fields)
        if access is not None:
            conditions.append(readable_by(access))
        per_document = d.max_per_document if o.max_per_document is None else o.max_per_document
        mmr = o.mmr_lambda if o.mmr_lambda is not None else d.mmr_lambda
        diversify = bool(per_document) or mmr is not None
        rerank_n = self._rerank_depth(o)
        limit = top_k * CANDIDATE_FACTOR if diversify else top_k
        hits = self.store.search(
            collection,
            dense=dense,
            sparse=sparse,
            mode=o.mode or d.mode,
            limit=max(limit, rerank_n),
            filters=conditions,
            fusion=o.fusion or d.fusion,
        )
        hits = newest_version_only(hits)
        if rerank_n and self.reranker is not None:
            hits = self.reranker.rerank(question, hits, rerank_n)
        if mmr is not None:
            hits = maximal_marginal_relevance(hits, len(hits), mmr)
        if per_document:
            hits = cap_per_document(hits, per_document)
        return hits[:top_k]

    def _rerank_depth(self, options: SearchOptions) -> int:
        """How many candidates to rerank: 0 when reranking is off for this request."""
        configured = self.defaults.rerank_top_n
        wanted = options.rerank if options.rerank is not None else configured is not None
        if not wanted:
            return 0
        if self.reranker is None:
            raise InvalidInput("reranking is not available in this deployment")
        return configured or DEFAULT_RERANK_TOP_N


def newest_version_only(hits: Sequence[ScoredChunk]) -> list[ScoredChunk]:
    """While a changed document is being replaced, its old and new chunks coexist for a moment
    (the new version is written first, then the old one deleted): show only the newest."""
    newest: dict[str, int] = {}
    for hit in hits:
        doc = hit.chunk.document_id
        newest[doc] = max(newest.get(doc, hit.chunk.version), hit.chunk.version)
    return [hit for hit in hits if hit.chunk.version == newest[hit.chunk.document_id]]


def cap_per_document(hits: Sequence[ScoredChunk], cap: int) -> list[ScoredChunk]:
    """Keep rank order, dropping a document's chunks past its first `cap`."""
    seen: dict[str, int] = {}
    kept = []
    for hit in hits:
        n = seen.get(hit.chunk.document_id, 0)
        if n < cap:
            kept.append(hit)
            seen[hit.chunk.document_id] = n + 1
    return kept


def maximal_marginal_relevance(
    hits: Sequence[ScoredChunk], k: int, trade_off: float
) -> list[ScoredChunk]:
    """Greedy MMR (Carbonell & Goldstein, 1998) on the chunks' cosine similarity to the question
    and to each other. Hits without a vector keep their rank after the diversified ones."""
    pool = [h for h in hits if h.vector is not None and h.similarity is not None]
    rest = [h for h in hits if h.vector is None or h.similarity is None]
    if not pool:
        return list(hits)[:k]
    vectors = np.asarray([h.vector for h in pool], dtype=np.float32)
    relevance = np.asarray([h.similarity for h in pool], dtype=np.float32)
    pairwise = vectors @ vectors.T
    closest = np.full(len(pool), -np.inf, dtype=np.float32)  # to anything chosen so far
    open_ = np.ones(len(pool), dtype=bool)
    order: list[int] = []
    while len(order) < min(k, len(pool)):
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        gain = np.where(open_, trade_off * relevance - (1 - trade_off) * penalty, -np.inf)
        best = int(np.argmax(gain))
        order.append(best)
        open_[best] = False
        closest = np.maximum(closest, pairwise[best])
    return [*(pool[i] for i in order), *rest][:k]
