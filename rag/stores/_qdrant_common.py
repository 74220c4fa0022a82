"""What both Qdrant backends share: the point layout, reading hits back, and filter lowering.

`qdrant.py` (qdrant-client) and `qdrant_edge.py` (the in-process Rust engine) store the same
points: a named cosine dense vector, a named sparse vector with the IDF modifier, and the payload
below. Their model classes differ, so a filter is lowered through a small `FilterDialect` that
each backend implements with its own classes; the decisions (float equality as a closed range,
booleans matched one by one) are made once, here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

import numpy as np

from rag.access import readable_by
from rag.filters import Condition, FieldType, Match, Range, Scalar
from rag.models import Chunk, ScoredChunk

DENSE, SPARSE = "dense", "sparse"
RRF_K = 2  # Qdrant's default ranking constant; the edge engine wants it spelled out
INDEXED: dict[str, FieldType] = {
    "document_id": "keyword",
    "source": "keyword",
    "page": "integer",
    "index": "integer",
    "access": "keyword",
}
LOCKED_HINT = (
    "The embedded Qdrant store at {path} is in use by another process (usually `rag serve`). "
    "One process owns the embedded store: send work to that process's API, or run a Qdrant "
    "server and set QDRANT_URL so that separate API and worker processes can share it."
)

Bounds = dict[str, float | datetime | None]
C_co = TypeVar("C_co", covariant=True)


def chunk_payload(chunk: Chunk) -> dict[str, Any]:
    return {
        "document_id": chunk.document_id,
        "collection": chunk.collection,
        "index": chunk.index,
        "version": chunk.version,
        "text": chunk.text,
        "section": chunk.section,
        "page": chunk.page,
        "source": chunk.source,
        "title": chunk.title,
        "token_count": chunk.token_count,
        "meta": chunk.metadata,
        "access": chunk.access,
    }


def payload_chunk(point_id: object, payload: Mapping[str, Any] | None) -> Chunk:
    """A stored point's payload as our model (the inverse of `chunk_payload`)."""
    payload = payload or {}
    return Chunk(
        id=str(point_id),
        document_id=payload["document_id"],
        collection=payload["collection"],
        index=payload["index"],
        version=payload.get("version", 0),
        text=payload["text"],
        section=payload.get("section"),
        page=payload.get("page"),
        token_count=payload.get("token_count", 0),
        source=payload.get("source", ""),
        title=payload.get("title", ""),
        metadata=payload.get("meta") or {},
        access=payload.get("access") or [],
    )


def scored_chunk(
    point_id: object,
    score: float,
    payload: Mapping[str, Any] | None,
    vectors: object,
    query: Sequence[float],
) -> ScoredChunk:
    """A hit as our model: `similarity` is the cosine to the query whatever the mode scored."""
    vector = vectors.get(DENSE) if isinstance(vectors, dict) else None
    if not (isinstance(vector, list) and vector and isinstance(vector[0], float)):
        vector = None
    similarity = float(np.dot(query, vector)) if vector is not None else None
    chunk = payload_chunk(point_id, payload)
    return ScoredChunk(chunk=chunk, score=float(score), similarity=similarity, vector=vector)


def document_conditions(document_id: str, before_version: int | None = None) -> list[Condition]:
    """A document's chunks; only those of versions older than `before_version` if given."""
    conditions: list[Condition] = [Match("document_id", "keyword", (document_id,))]
    if before_version is not None:
        conditions.append(Range("version", "integer", lt=before_version))
    return conditions


def readable_document(document_id: str, access: Sequence[str] | None) -> list[Condition]:
    """A document's chunks that a caller with `access` tokens may read (None: all of them),
    the same condition search adds, so reading a document never shows more than finding it."""
    conditions = document_conditions(document_id)
    if access is not None:
        conditions.append(readable_by(access))
    return conditions


def reading_order(chunks: Sequence[Chunk]) -> list[Chunk]:
    """The chunks of the newest version present, by index: while a changed document is
    re-ingested its new version is written before the old one is deleted."""
    if not chunks:
        return []
    newest = max(c.version for c in chunks)
    return sorted((c for c in chunks if c.version == newest), key=lambda c: c.index)


class FilterDialect(Protocol[C_co]):
    """How one backend spells the few condition shapes our filters lower to."""

    def match(self, key: str, value: Scalar) -> C_co: ...

    def match_any(self, key: str, values: list[Any]) -> C_co: ...

    def range(self, key: str, bounds: Bounds, *, is_datetime: bool) -> C_co: ...

    def any_of(self, conditions: list[Any]) -> C_co: ...


def lower(filters: Sequence[Condition], dialect: FilterDialect[C_co]) -> list[C_co]:
    """Our conditions as the backend's, all of which must hold."""
    return [_lower(condition, dialect) for condition in filters]


def _lower(condition: Condition, dialect: FilterDialect[C_co]) -> C_co:
    key = condition.key
    if isinstance(condition, Range):
        bounds: Bounds = {
            "gt": condition.gt,
            "gte": condition.gte,
            "lt": condition.lt,
            "lte": condition.lte,
        }
        return dialect.range(key, bounds, is_datetime=condition.type == "datetime")
    values = condition.values
    # Qdrant matches exact strings, integers and booleans only: a float is a closed range.
    if condition.type == "float" or any(isinstance(v, float) for v in values):
        return dialect.any_of(
            [
                dialect.range(key, {"gte": float(v), "lte": float(v)}, is_datetime=False)
                for v in values
            ]
        )
    if len(values) == 1:
        return dialect.match(key, values[0])
    if condition.type == "bool":  # "any of" takes strings or integers, not booleans
        return dialect.any_of([dialect.match(key, v) for v in values])
    return dialect.match_any(key, list(values))
