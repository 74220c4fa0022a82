"""The `VectorStore` role: chunks with a dense and a sparse vector, searched per collection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from rag.config import Fusion, RetrievalMode
from rag.filters import Condition, FieldType
from rag.models import Chunk, ScoredChunk, SparseVector


class VectorStore(Protocol):
    def ping(self) -> None: ...

    def ensure_collection(self, collection: str, dimension: int) -> None: ...

    def drop_collection(self, collection: str) -> None: ...

    def index_fields(self, collection: str, fields: Mapping[str, FieldType]) -> None:
        """Index payload fields that filters use (user metadata keys, as they appear)."""
        ...

    def upsert(
        self,
        chunks: Sequence[Chunk],
        dense: Sequence[Sequence[float]],
        sparse: Sequence[SparseVector],
    ) -> None:
        """Write chunks (all of one collection); same chunk id = overwrite, never a duplicate."""
        ...

    def delete_document(
        self, collection: str, document_id: str, *, before_version: int | None = None
    ) -> None:
        """Delete a document's chunks; only those of versions before `before_version` if given."""
        ...

    def upgrade(self, collection: str) -> int:
        """Bring a collection written by an older version up to date (payload indexes; chunks
        without an access list become readable by everyone, as they were). Idempotent; returns
        how many chunks it changed."""
        ...

    def set_access(self, collection: str, document_id: str, access: Sequence[str]) -> None:
        """Replace the access list on every chunk of a document (no re-embedding)."""
        ...

    def count(self, collection: str, document_id: str | None = None) -> int: ...

    def document_chunks(
        self, collection: str, document_id: str, *, access: Sequence[str] | None
    ) -> list[Chunk]:
        """A document's chunks that a caller with `access` tokens may read (None: unrestricted),
        filtered inside the store as search is, in reading order (newest version, by index);
        empty if there are none or the collection does not exist."""
        ...

    def search(
        self,
        collection: str,
        *,
        dense: Sequence[float],
        sparse: SparseVector,
        mode: RetrievalMode,
        limit: int,
        filters: Sequence[Condition] = (),
        fusion: Fusion = "rrf",
    ) -> list[ScoredChunk]:
        """Best `limit` chunks; each carries its dense vector so callers can diversify."""
        ...
