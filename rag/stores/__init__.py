"""The `VectorStore` role: chunks with a dense and a sparse vector, searched per collection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from rag.config import RetrievalMode
from rag.models import Chunk, ScoredChunk, SparseVector

# {"field": value} or {"field": [any, of, these]}; document fields or user metadata keys.
MetadataFilter = dict[str, Any]


class VectorStore(Protocol):
    def ping(self) -> None: ...

    def ensure_collection(self, collection: str, dimension: int) -> None: ...

    def drop_collection(self, collection: str) -> None: ...

    def upsert(
        self,
        chunks: Sequence[Chunk],
        dense: Sequence[Sequence[float]],
        sparse: Sequence[SparseVector],
    ) -> None:
        """Write chunks (all of one collection); same chunk id = overwrite, never a duplicate."""
        ...

    def delete_document(self, collection: str, document_id: str, *, from_index: int = 0) -> None:
        """Delete a document's chunks whose index is >= `from_index`."""
        ...

    def count(self, collection: str, document_id: str | None = None) -> int: ...

    def search(
        self,
        collection: str,
        *,
        dense: Sequence[float],
        sparse: SparseVector,
        mode: RetrievalMode,
        limit: int,
        filters: MetadataFilter | None = None,
    ) -> list[ScoredChunk]: ...
