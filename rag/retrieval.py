"""Question → scored chunks from one collection (dense, keyword or hybrid with RRF fusion)."""

from __future__ import annotations

from rag.catalog import Catalog
from rag.config import RetrievalMode
from rag.embedding import Embedder
from rag.errors import InvalidInput
from rag.models import ScoredChunk
from rag.sparse import Bm25Encoder
from rag.stores import MetadataFilter, VectorStore

_SCALAR = (str, int, float, bool)


class Retriever:
    def __init__(
        self,
        catalog: Catalog,
        embedder: Embedder,
        sparse: Bm25Encoder,
        store: VectorStore,
        *,
        max_top_k: int = 50,
    ):
        self.catalog = catalog
        self.embedder = embedder
        self.sparse = sparse
        self.store = store
        self.max_top_k = max_top_k

    def retrieve(
        self,
        collection: str,
        question: str,
        *,
        top_k: int,
        mode: RetrievalMode,
        filters: MetadataFilter | None = None,
    ) -> list[ScoredChunk]:
        if not question.strip():
            raise InvalidInput("the question is empty")
        if not 1 <= top_k <= self.max_top_k:
            raise InvalidInput(f"top_k must be between 1 and {self.max_top_k}")
        _check_filters(filters)
        self.catalog.get_collection(collection)  # unknown collection → NotFoundError
        return self.store.search(
            collection,
            dense=self.embedder.embed_query(question),
            sparse=self.sparse.encode_query(question),
            mode=mode,
            limit=top_k,
            filters=filters,
        )


def _check_filters(filters: MetadataFilter | None) -> None:
    for key, value in (filters or {}).items():
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, _SCALAR) for v in values):
            raise InvalidInput(
                f"filter {key!r}: expected a string, number or boolean, or a non-empty list of them"
            )
